# Standardised effect sizes of mixed models (MixedResult.effect_size), sourced at the end of
# make_reference.R; also runs alone from this folder: Rscript --vanilla make_reference_effect.R
#
# Feingold (2009) d_GMA = beta(time:armIMR) * duration / SD_raw, its CI per Feingold (2015)
# (the CI of beta * duration divided by SD_raw, SD_raw treated as fixed; t quantile with lmerTest's
# Satterthwaite df) and the sampling variance (SE_beta * duration / SD_raw)^2. With categorical
# time: d at an occasion = (IMR - TAU contrast at that occasion, emmeans) / SD_raw.
# SD_raw: "baseline" = pooled within-arm SD of the observed outcome at the first time / occasion
# (sd() per arm, pooled with n - 1 weights); "model" = sqrt(z0' G z0 + sigma^2), z0 = (1, t0)
# (the model-implied SD at baseline time t0 of a participant, from VarCorr).
# Fixture: effect_size.csv (numbers with 17 significant digits).
source("_common.R")  # read_trial, fit_best, sd_baseline, sd_model, scaled_contrasts

local({
  cases <- list(
    list(dataset = "trial_slope", random = "slope", method = "REML", fixed = "time * arm"),
    list(dataset = "trial_slope", random = "slope", method = "ML", fixed = "time * arm"),
    list(dataset = "trial_slope", random = "intercept", method = "REML", fixed = "time * arm"),
    list(dataset = "trial_boundary", random = "slope", method = "REML", fixed = "time * arm"),
    list(dataset = "trial_trap", random = "slope", method = "REML", fixed = "time * arm"),
    list(dataset = "trial_covariates", random = "slope", method = "REML",
         fixed = "time * arm + age + site"),
    list(dataset = "trial_occasion", random = "intercept", method = "REML",
         fixed = "occasion * arm"),
    list(dataset = "trial_occasion", random = "intercept", method = "ML",
         fixed = "occasion * arm")
  )
  rows <- list()
  for (cs in cases) {
    case <- paste(cs$dataset, cs$random, cs$method, sep = "-")
    d <- read_trial(cs$dataset)
    # Best of lme4's start and other starts (as make_reference.R).
    fit <- fit_best(mixed_formula(cs$fixed, cs$random), d, cs$method == "REML",
                    grid_starts(cs$random))$fit
    used <- d[!is.na(d$value), ]
    t0 <- min(used$time)
    sds <- c(baseline = sd_baseline(d, d$time == t0), model = sd_model(fit, t0))
    occasion_case <- cs$dataset == "trial_occasion"
    if (!occasion_case) {
      co <- summary(fit, ddf = "Satterthwaite")$coefficients["time:armIMR", ]
      durations <- list(default = max(used$time) - t0)
      if (case == "trial_slope-slope-REML") durations$`6` <- 6
      levels <- if (case == "trial_slope-slope-REML") c(0.95, 0.9) else 0.95
      for (sdk in names(sds)) for (dn in names(durations)) for (lev in levels) {
        dur <- durations[[dn]]
        q <- qt(1 - (1 - lev) / 2, co[["df"]])
        est <- co[["Estimate"]] * dur / sds[[sdk]]
        se <- co[["Std. Error"]] * dur / sds[[sdk]]
        rows[[length(rows) + 1]] <- data.frame(
          case = case, sd = sdk, duration_arg = dn, level = lev, term = "IMR - TAU",
          occasion = "NA", estimate = fmt(est), std_error = fmt(se), df = fmt(co[["df"]]),
          ci_low = fmt((co[["Estimate"]] - q * co[["Std. Error"]]) * dur / sds[[sdk]]),
          ci_high = fmt((co[["Estimate"]] + q * co[["Std. Error"]]) * dur / sds[[sdk]]),
          variance = fmt(se^2), duration = fmt(dur), sd_raw = fmt(sds[[sdk]])
        )
      }
    } else {
      sds[["baseline"]] <- sd_baseline(d, d$occasion == "baseline")
      emm <- emmeans(fit, ~ arm | occasion, lmer.df = "satterthwaite")
      con <- as.data.frame(summary(contrast(emm, "trt.vs.ctrl"), infer = c(TRUE, TRUE)))
      for (sdk in names(sds)) {
        rows[[length(rows) + 1]] <- data.frame(
          case = case, sd = sdk, duration_arg = "default", level = 0.95,
          scaled_contrasts(con, sds[[sdk]]), duration = "NA", sd_raw = fmt(sds[[sdk]])
        )
      }
    }
  }
  write_rows(rows, "effect_size.csv")
})
