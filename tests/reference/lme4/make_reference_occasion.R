# lme4 + lmerTest + emmeans references for imrstats.mixed with a categorical occasion and random
# slopes on the numeric time (time = "occasion", random = "slope", and the partially nested model
# with cluster_random = "slope" / "both"). Sourced at the end of make_reference.R; also runs
# alone from this folder: Rscript --vanilla make_reference_occasion.R
#
# Models (occasion: treatment contrasts, baseline first; time: months, numeric):
#   trial_occasion: value ~ occasion * arm + (time | participant)
#   nested_13:      value ~ occasion * arm + (time | participant) + (0 + imr:time | group)
#                   value ~ occasion * arm + (time | participant) + (0 + imr + imr:time | group)
#                   value ~ occasion * arm + (1 | participant) + (0 + imr:time | group)
#   with imr = 1 when cluster is set, group = cluster or the participant's own id (as
#   make_reference_nested.R).
# Fitted as the other scripts: lmerTest::lmer, bobyqa (rhoend 1e-12, maxfun 1e6), from lme4's
# start and three other starting values of theta, the best optimum kept (another start replaces
# lme4's only when better by more than 1e-10); then one restart from the best theta, kept when
# its criterion is lower (it moves theta by up to ~3e-6 where the criterion is flat to 1e-10).
# Fixtures (17 significant digits):
#   occasion_fixed.csv     case, term, estimate, std_error, df, statistic, p_value, ci_low, ci_high
#   occasion_random.csv    case, group, var1, var2, vcov, sdcor (as.data.frame(VarCorr(fit)))
#   occasion_fit.csv       case, dataset, random, cluster_random, method, nobs, ngroups,
#                          nclusters, loglik, aic, bic, deviance, sigma, theta1..theta6,
#                          singular, deviance_default_start
#   occasion_emmeans.csv   case, arm, occasion, estimate, std_error, df, ci_low, ci_high
#                          (emmeans(fit, ~ arm | occasion, lmer.df = "satterthwaite"))
#   occasion_contrasts.csv case, adjust, contrast, occasion, estimate, std_error, df, statistic,
#                          p_value, ci_low, ci_high (trt.vs.ctrl, summary(by = NULL, adjust))
#   occasion_effect_size.csv case, sd, term, occasion, estimate, std_error, df, ci_low,
#                          ci_high, variance, sd_raw (IMR - TAU contrast at each occasion / SD_raw)
source("_common.R")  # read_datasets (imr, group), cluster_cases, fit_cluster_cases, tables

local({
  datasets <- read_datasets(c("trial_occasion", "nested_13"))
  cases <- cluster_cases(list(
    c("trial_occasion", "slope", "none", "REML"), c("nested_13", "slope", "slope", "REML"),
    c("trial_occasion", "slope", "none", "ML"), c("nested_13", "slope", "slope", "ML"),
    c("nested_13", "slope", "both", "REML"), c("nested_13", "intercept", "slope", "REML")
  ), "occasion * arm")
  fits <- fit_cluster_cases(cases, datasets, "occasion", polish = TRUE, count_none = FALSE)

  # Marginal means by occasion x arm, IMR - TAU at each occasion, and d at each occasion.
  emm_rows <- list(); con_rows <- list(); es_rows <- list()
  for (cs in cases) {
    fit <- fits[[cs$case]]
    d <- datasets[[cs$dataset]]
    emm <- emmeans(fit, ~ arm | occasion, lmer.df = "satterthwaite")
    emm_rows[[cs$case]] <- emm_table(emm, cs$case, "occasion", cols = "occasion")
    con_rows[[cs$case]] <- contrast_table(emm, cs$case, "occasion",
                                          c("none", "holm", "bonferroni", "sidak"),
                                          cols = "occasion")
    if (cs$method == "REML" && cs$random == "slope") {
      cn <- as.data.frame(summary(contrast(emm, "trt.vs.ctrl"), infer = c(TRUE, TRUE)))
      used <- d[!is.na(d$value), ]
      sds <- c(baseline = sd_baseline(d, d$occasion == "baseline"))
      # The model-implied SD is not defined for the partially nested model.
      if (cs$cluster_random == "none") sds[["model"]] <- sd_model(fit, min(used$time))
      for (sdk in names(sds)) {
        es_rows[[paste(cs$case, sdk)]] <- data.frame(
          case = cs$case, sd = sdk, scaled_contrasts(cn, sds[[sdk]]), sd_raw = fmt(sds[[sdk]])
        )
      }
    }
  }
  write_rows(emm_rows, "occasion_emmeans.csv")
  write_rows(con_rows, "occasion_contrasts.csv")
  write_rows(es_rows, "occasion_effect_size.csv")
})
