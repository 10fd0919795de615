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
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})
options(warn = 1)

local({
  fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
  read_trial <- function(name) {
    d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                                                       arm = "character", occasion = "character",
                                                       time = "numeric", value = "numeric"))
    d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
    d$occasion <- factor(d$occasion, levels = c("baseline", "3m", "6m", "12m"))
    d
  }
  ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                      check.conv.singular = "ignore")
  # Best of lme4's start and other starts (as make_reference.R).
  best_fit <- function(formula, d, reml, slope) {
    starts <- if (slope) list(NULL, c(0.5, 0.5, 0.5), c(1, -0.5, 1), c(0.1, 0.1, 0.1))
              else list(NULL, 0.5, 0.1)
    fit <- NULL
    for (st in starts) {
      cand <- if (is.null(st)) {
        lmerTest::lmer(formula, data = d, REML = reml, control = ctrl)
      } else {
        lmerTest::lmer(formula, data = d, REML = reml, control = ctrl, start = list(theta = st))
      }
      dev <- if (reml) REMLcrit(cand) else deviance(cand)
      if (is.null(fit) || dev < best - 1e-10) { fit <- cand; best <- dev }
    }
    fit
  }
  # Observed rows used by the fit (outcome present), then their baseline rows.
  sd_baseline <- function(d, baseline) {
    b <- d[baseline & !is.na(d$value), ]
    s <- tapply(b$value, b$arm, sd)
    n <- tapply(b$value, b$arm, length)
    sqrt(sum((n - 1) * s^2) / sum(n - 1))
  }
  sd_model <- function(fit, t0) {
    G <- VarCorr(fit)$participant
    z0 <- c(1, t0)[seq_len(nrow(G))]
    sqrt(drop(t(z0) %*% G %*% z0) + sigma(fit)^2)
  }

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
    re <- if (cs$random == "slope") "(time | participant)" else "(1 | participant)"
    fit <- best_fit(as.formula(paste("value ~", cs$fixed, "+", re)), d, cs$method == "REML",
                    cs$random == "slope")
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
        s <- sds[[sdk]]
        rows[[length(rows) + 1]] <- data.frame(
          case = case, sd = sdk, duration_arg = "default", level = 0.95,
          term = as.character(con$contrast), occasion = as.character(con$occasion),
          estimate = fmt(con$estimate / s), std_error = fmt(con$SE / s), df = fmt(con$df),
          ci_low = fmt(con$lower.CL / s), ci_high = fmt(con$upper.CL / s),
          variance = fmt((con$SE / s)^2), duration = "NA", sd_raw = fmt(s)
        )
      }
    }
  }
  write.csv(do.call(rbind, rows), "effect_size.csv", row.names = FALSE, quote = FALSE)
})
