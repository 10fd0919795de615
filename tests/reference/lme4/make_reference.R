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
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})
options(warn = 1)

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

sleep <- lme4::sleepstudy
write.csv(
  data.frame(participant = as.character(sleep$Subject), time = fmt(sleep$Days),
             value = fmt(sleep$Reaction)),
  "sleepstudy.csv", row.names = FALSE, quote = FALSE
)

read_trial <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                                                     arm = "character", occasion = "character",
                                                     time = "numeric", value = "numeric"))
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = c("baseline", "3m", "6m", "12m"))  # treatment contrasts
  d
}
datasets <- list(
  sleepstudy = read.csv("sleepstudy.csv", colClasses = c("character", "numeric", "numeric")),
  trial_slope = read_trial("trial_slope"),
  trial_boundary = read_trial("trial_boundary"),
  trial_occasion = read_trial("trial_occasion"),
  trial_trap = read_trial("trial_trap"),
  trial_covariates = read_trial("trial_covariates")  # + age (numeric), site (text)
)

ctrl <- lmerControl(
  optimizer = "bobyqa",
  optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
  check.conv.singular = "ignore"
)

cases <- list()
add <- function(dataset, fixed, random, method) {
  re <- if (random == "slope") "(time | participant)" else "(1 | participant)"
  cases[[length(cases) + 1]] <<- list(
    case = paste(dataset, random, method, sep = "-"), dataset = dataset, random = random,
    method = method, formula = as.formula(paste("value ~", fixed, "+", re))
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
  d <- datasets[[cs$dataset]]
  starts <- if (cs$random == "slope") {
    list(NULL, c(0.5, 0.5, 0.5), c(1, -0.5, 1), c(0.1, 0.1, 0.1))
  } else {
    list(NULL, 0.5, 0.1)
  }
  fit <- NULL
  for (st in starts) {
    cand <- if (is.null(st)) {
      lmerTest::lmer(cs$formula, data = d, REML = cs$method == "REML", control = ctrl)
    } else {
      lmerTest::lmer(cs$formula, data = d, REML = cs$method == "REML", control = ctrl,
                     start = list(theta = st))
    }
    dev <- if (cs$method == "REML") REMLcrit(cand) else deviance(cand)
    if (is.null(fit)) {
      fit <- cand; best <- dev; default_dev <- dev
    } else if (dev < best - 1e-10) {
      fit <- cand; best <- dev
    }
  }
  fits[[cs$case]] <- fit
  co <- summary(fit, ddf = "Satterthwaite")$coefficients
  q <- qt(0.975, co[, "df"])
  fixed_rows[[cs$case]] <- data.frame(
    case = cs$case, term = rownames(co), estimate = fmt(co[, "Estimate"]),
    std_error = fmt(co[, "Std. Error"]), df = fmt(co[, "df"]), statistic = fmt(co[, "t value"]),
    p_value = fmt(co[, "Pr(>|t|)"]), ci_low = fmt(co[, "Estimate"] - q * co[, "Std. Error"]),
    ci_high = fmt(co[, "Estimate"] + q * co[, "Std. Error"])
  )
  vc <- as.data.frame(VarCorr(fit))
  random_rows[[cs$case]] <- data.frame(
    case = cs$case, group = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
    var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = fmt(vc$vcov), sdcor = fmt(vc$sdcor)
  )
  th <- c(getME(fit, "theta"), NA, NA, NA)[1:3]
  ll <- logLik(fit)
  fit_rows[[cs$case]] <- data.frame(
    case = cs$case, dataset = cs$dataset, random = cs$random, method = cs$method,
    nobs = nobs(fit), ngroups = unname(ngrps(fit)), loglik = fmt(as.numeric(ll)),
    aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
    deviance = fmt(if (cs$method == "REML") REMLcrit(fit) else deviance(fit)),
    sigma = fmt(sigma(fit)), theta1 = fmt(th[1]), theta2 = fmt(th[2]), theta3 = fmt(th[3]),
    singular = isSingular(fit), deviance_default_start = fmt(default_dev)
  )
}
write.csv(do.call(rbind, fixed_rows), "fixed.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, random_rows), "random.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, fit_rows), "fit.csv", row.names = FALSE, quote = FALSE)
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
  s <- as.data.frame(summary(emm))
  emm_rows[[ec$case]] <- data.frame(
    case = ec$case, arm = as.character(s$arm),
    time = if (by == "time") fmt(s$time) else "NA",
    occasion = if (by == "occasion") as.character(s$occasion) else "NA",
    estimate = fmt(s$emmean), std_error = fmt(s$SE), df = fmt(s$df),
    ci_low = fmt(s$lower.CL), ci_high = fmt(s$upper.CL)
  )
  con <- contrast(emm, "trt.vs.ctrl")
  for (adj in c("none", "holm", "bonferroni", "sidak")) {
    cs <- as.data.frame(summary(con, by = NULL, adjust = adj, infer = c(TRUE, TRUE)))
    con_rows[[paste(ec$case, adj)]] <- data.frame(
      case = ec$case, adjust = adj, contrast = gsub(" ", "", as.character(cs$contrast)),
      time = if (by == "time") fmt(cs$time) else "NA",
      occasion = if (by == "occasion") as.character(cs$occasion) else "NA",
      estimate = fmt(cs$estimate), std_error = fmt(cs$SE), df = fmt(cs$df),
      statistic = fmt(cs$t.ratio), p_value = fmt(cs$p.value),
      ci_low = fmt(cs$lower.CL), ci_high = fmt(cs$upper.CL)
    )
  }
}
write.csv(do.call(rbind, emm_rows), "emmeans.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, con_rows), "contrasts.csv", row.names = FALSE, quote = FALSE)

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
write.csv(do.call(rbind, lrt_rows), "lrt.csv", row.names = FALSE, quote = FALSE)

# The partially nested model (therapy groups): nested_*.csv, see that script.
source("make_reference_nested.R", local = new.env())

# Standardised effect sizes (Feingold d_GMA): effect_size.csv, see that script.
source("make_reference_effect.R", local = new.env())

# Categorical occasion with random / therapy-group slopes on the numeric time: occasion_*.csv.
source("make_reference_occasion.R", local = new.env())

# Kenward-Roger df and adjusted covariance (pbkrtest): kr_*.csv, see that script.
source("make_reference_kr.R", local = new.env())

writeLines(c(
  R.version.string,
  paste("lme4", packageVersion("lme4")),
  paste("lmerTest", packageVersion("lmerTest")),
  paste("emmeans", packageVersion("emmeans")),
  paste("Matrix", packageVersion("Matrix")),
  paste("minqa", packageVersion("minqa")),
  "optimizer: bobyqa, rhoend = 1e-12, maxfun = 1e6"
), "versions.txt")
