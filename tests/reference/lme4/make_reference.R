# lme4 + lmerTest references for imrstats.mixed (run from this folder: Rscript --vanilla make_reference.R).
#
# Data: lme4::sleepstudy (exported to sleepstudy.csv by this script) and the seeded trials
# written by make_data.py (trial_*.csv, committed; R reads exactly the numbers Python reads).
# Every model is fitted by lmerTest::lmer with bobyqa at tight tolerances so that the
# reference is the optimum itself, not where a default stopping rule happened to land.
# Fixtures (numbers printed with 17 significant digits):
#   fixed.csv   case, term, estimate, std_error, df, statistic, p_value, ci_low, ci_high
#               (Satterthwaite df as lmerTest; CI = estimate -/+ qt(0.975, df) * std_error)
#   random.csv  case, group, var1, var2, vcov, sdcor (as.data.frame(VarCorr(fit)))
#   fit.csv     case, dataset, random, method, nobs, ngroups, loglik, aic, bic, deviance,
#               sigma, theta1..theta3, singular, deviance_default_start
# Every model is fitted from lme4's start and from 3 (slope) or 2 (intercept) other starting
# values of theta; the reference is the best optimum (a start replaces lme4's only when it is
# better by more than 1e-10). deviance_default_start is the criterion bobyqa reaches from lme4's
# own start (on trial_trap it stops at a poorer optimum on the boundary theta_1 = 0).
#   emmeans.csv case, arm, time, occasion, estimate, std_error, df, ci_low, ci_high
#               (emmeans(fit, ~ arm | time or ~ arm | occasion, lmer.df = "satterthwaite"))
#   contrasts.csv case, adjust, contrast, time, occasion, estimate, std_error, df, statistic,
#               p_value, ci_low, ci_high (contrast(emm, "trt.vs.ctrl") summarised with
#               by = NULL so that the adjustment family is every row)
#   lrt.csv     dataset, method, npar_reduced, npar_full, loglik_reduced, loglik_full,
#               statistic, df, p_value (anova(intercept fit, slope fit, refit = FALSE))
#   versions.txt
#   nested_*.csv (the partially nested model), written by make_reference_nested.R, sourced
#   at the end of this script.
#   effect_size.csv (MixedResult.effect_size: Feingold d_GMA), written by
#   make_reference_effect.R, sourced after it.
#   occasion_*.csv (categorical occasion with random and therapy-group slopes on the numeric
#   time), written by make_reference_occasion.R, sourced after it.
#   kr_*.csv (df = "kenward-roger": pbkrtest), written by make_reference_kr.R, sourced last.
source("_common.R")  # fmt, read_datasets, ctrl, fit_best, the fixture tables

sleep <- lme4::sleepstudy
write.csv(
  data.frame(participant = as.character(sleep$Subject), time = fmt(sleep$Days),
             value = fmt(sleep$Reaction)),
  "sleepstudy.csv", row.names = FALSE, quote = FALSE
)

datasets <- read_datasets(c("sleepstudy", "trial_slope", "trial_boundary", "trial_occasion",
                            "trial_trap", "trial_covariates"))  # covariates: + age, site (text)

cases <- list()
add <- function(dataset, fixed, random, method) {
  cases[[length(cases) + 1]] <<- list(
    case = paste(dataset, random, method, sep = "-"), dataset = dataset, random = random,
    method = method, formula = mixed_formula(fixed, random)
  )
}
for (method in c("REML", "ML")) {
  for (random in c("slope", "intercept")) {
    add("sleepstudy", "time", random, method)
    add("trial_slope", "time * arm", random, method)
    add("trial_boundary", "time * arm", random, method)
    add("trial_trap", "time * arm", random, method)
    add("trial_covariates", "time * arm + age + site", random, method)
  }
  add("trial_occasion", "occasion * arm", "intercept", method)
}

fixed_rows <- list(); random_rows <- list(); fit_rows <- list(); fits <- list()
for (cs in cases) {
  reml <- cs$method == "REML"
  best <- fit_best(cs$formula, datasets[[cs$dataset]], reml, grid_starts(cs$random))
  fit <- fits[[cs$case]] <- best$fit
  fixed_rows[[cs$case]] <- fixed_table(fit, cs$case)
  random_rows[[cs$case]] <- random_table(fit, cs$case)
  fit_rows[[cs$case]] <- fit_row(
    fit, reml, best$default_dev, 3, case = cs$case, dataset = cs$dataset, random = cs$random,
    method = cs$method, nobs = nobs(fit), ngroups = unname(ngrps(fit))
  )
}
write_rows(fixed_rows, "fixed.csv")
write_rows(random_rows, "random.csv")
write_rows(fit_rows, "fit.csv")
# Estimated marginal means and IMR - TAU contrasts.
emm_cases <- list(
  list(case = "trial_slope-slope-REML", at = list(time = c(0, 6, 12))),
  list(case = "trial_slope-slope-ML", at = list(time = c(0, 6, 12))),
  list(case = "trial_slope-intercept-REML", at = NULL),  # time at its mean, emmeans' default
  list(case = "trial_boundary-slope-REML", at = list(time = c(0, 3, 6, 12))),
  # age at its mean, site averaged over its levels with equal weights (emmeans' defaults)
  list(case = "trial_covariates-slope-REML", at = list(time = c(0, 6, 12))),
  list(case = "trial_occasion-intercept-REML", at = NULL),
  list(case = "trial_occasion-intercept-ML", at = NULL)
)
emm_rows <- list(); con_rows <- list()
for (ec in emm_cases) {
  fit <- fits[[ec$case]]
  by <- if (grepl("occasion", ec$case)) "occasion" else "time"
  spec <- as.formula(paste("~ arm |", by))
  emm <- if (is.null(ec$at)) {
    emmeans(fit, spec, lmer.df = "satterthwaite")
  } else {
    emmeans(fit, spec, at = ec$at, lmer.df = "satterthwaite")
  }
  emm_rows[[ec$case]] <- emm_table(emm, ec$case, by)
  con_rows[[ec$case]] <- contrast_table(emm, ec$case, by, c("none", "holm", "bonferroni", "sidak"))
}
write_rows(emm_rows, "emmeans.csv")
write_rows(con_rows, "contrasts.csv")

# Likelihood-ratio tests: random intercept vs correlated intercept and slope (same fixed
# effects, so REML fits are comparable: refit = FALSE keeps them REML).
lrt_rows <- list()
for (method in c("REML", "ML")) {
  for (dataset in c("sleepstudy", "trial_slope", "trial_boundary")) {
    small <- fits[[paste(dataset, "intercept", method, sep = "-")]]
    big <- fits[[paste(dataset, "slope", method, sep = "-")]]
    a <- suppressMessages(anova(small, big, refit = FALSE))
    lrt_rows[[paste(dataset, method)]] <- data.frame(
      dataset = dataset, method = method, npar_reduced = a$npar[1], npar_full = a$npar[2],
      loglik_reduced = fmt(a$logLik[1]), loglik_full = fmt(a$logLik[2]),
      statistic = fmt(a$Chisq[2]), df = a$Df[2], p_value = fmt(a[["Pr(>Chisq)"]][2])
    )
  }
}
write_rows(lrt_rows, "lrt.csv")

# The partially nested model (therapy groups): nested_*.csv, see that script.
source("make_reference_nested.R", local = new.env())

# Standardised effect sizes (Feingold d_GMA): effect_size.csv, see that script.
source("make_reference_effect.R", local = new.env())

# Categorical occasion with random / therapy-group slopes on the numeric time: occasion_*.csv.
source("make_reference_occasion.R", local = new.env())

# Kenward-Roger df and adjusted covariance (pbkrtest): kr_*.csv, see that script.
source("make_reference_kr.R", local = new.env())

write_versions("versions.txt", c("lme4", "lmerTest", "emmeans", "Matrix", "minqa"),
               "optimizer: bobyqa, rhoend = 1e-12, maxfun = 1e6")
