# Kenward-Roger references for imrstats.mixed(..., df = "kenward-roger"): pbkrtest's adjusted
# covariance (vcovAdj) and denominator df (Lb_ddf), as lmerTest's
# summary(fit, ddf = "Kenward-Roger") and emmeans' lmer.df = "kenward-roger" use them.
# Sourced by make_reference.R; also runs alone (from this folder):
#   Rscript --vanilla make_reference_kr.R
#
# Data: sleepstudy.csv, trial_*.csv and nested_*.csv (see make_reference.R and
# make_reference_nested.R). Every model is REML (pbkrtest refits ML models with REML; lmerTest
# refuses them), fitted by lmerTest::lmer with bobyqa (rhoend 1e-12) from lme4's start and
# three other starting values of theta, the best optimum kept (as make_reference_nested.R).
# Fixtures (numbers with 17 significant digits):
#   kr_fixed.csv     case, term, estimate, std_error (KR-adjusted), df (KR), statistic,
#                    p_value, ci_low, ci_high (estimate -/+ qt(0.975, df) * std_error),
#                    std_error_unadjusted (sqrt(diag(vcov(fit))))
#   kr_vcov.csv      case, row, col, vcov_adjusted (pbkrtest::vcovAdj), vcov (lme4's vcov)
#   kr_emmeans.csv   case, arm, time, occasion, estimate, std_error, df, ci_low, ci_high
#                    (emmeans(fit, ~ arm | time or occasion, lmer.df = "kenward-roger"))
#   kr_contrasts.csv case, adjust, contrast, time, occasion, estimate, std_error, df,
#                    statistic, p_value, ci_low, ci_high (contrast(emm, "trt.vs.ctrl"),
#                    summarised with by = NULL)
#   kr_ftest.csv     case, terms (";"-separated), ddf: pbkrtest::Lb_ddf of the joint F-test of
#                    every fixed effect whose name contains "arm" (q > 1 rows of L)
#   kr_versions.txt
source("_common.R")  # read_datasets, ctrl, fit_best, the fixture tables
load_packages("pbkrtest")

datasets <- read_datasets(c("sleepstudy", "trial_slope", "trial_boundary", "trial_occasion",
                            "trial_covariates", "nested_13", "nested_int"))

# case name: dataset-random[-cluster_random]-REML, as the other fixtures.
# at: times of the marginal means (NULL: no arm, no marginal means; "occasion": by occasion).
cases <- list(
  list(dataset = "sleepstudy", fixed = "time", random = "slope", at = NULL),
  list(dataset = "sleepstudy", fixed = "time", random = "intercept", at = NULL),
  list(dataset = "trial_slope", fixed = "time * arm", random = "slope", at = c(0, 6, 12)),
  list(dataset = "trial_slope", fixed = "time * arm", random = "intercept", at = c(0, 12)),
  list(dataset = "trial_boundary", fixed = "time * arm", random = "slope", at = c(0, 3, 6, 12)),
  list(dataset = "trial_covariates", fixed = "time * arm + age + site", random = "slope",
       at = c(0, 6, 12)),
  list(dataset = "trial_occasion", fixed = "occasion * arm", random = "intercept",
       at = "occasion"),
  list(dataset = "nested_13", fixed = "time * arm", random = "slope", cluster = "slope",
       at = c(0, 6, 12)),
  list(dataset = "nested_13", fixed = "time * arm", random = "slope", cluster = "both",
       at = c(0, 6, 12)),
  list(dataset = "nested_13", fixed = "time * arm", random = "intercept", cluster = "slope",
       at = c(0, 12)),
  list(dataset = "nested_int", fixed = "time * arm", random = "intercept",
       cluster = "intercept", at = c(0, 12)),
  list(dataset = "nested_int", fixed = "time * arm", random = "slope", cluster = "both",
       at = c(0, 12))
)

fixed_rows <- list(); vcov_rows <- list(); emm_rows <- list(); con_rows <- list()
f_rows <- list()
for (cs in cases) {
  cluster <- if (is.null(cs$cluster)) "none" else cs$cluster
  case <- paste(c(cs$dataset, cs$random, cs$cluster, "REML"), collapse = "-")
  fit <- fit_best(mixed_formula(cs$fixed, cs$random, cluster), datasets[[cs$dataset]], TRUE,
                  lower_starts)$fit
  fixed <- fixed_table(fit, case, "Kenward-Roger")
  fixed$std_error_unadjusted <- fmt(sqrt(diag(as.matrix(vcov(fit)))))
  fixed_rows[[case]] <- fixed
  va <- as.matrix(vcovAdj(fit))
  v0 <- as.matrix(vcov(fit))
  terms <- fixed$term
  vcov_rows[[case]] <- data.frame(
    case = case, row = rep(terms, times = length(terms)), col = rep(terms, each = length(terms)),
    vcov_adjusted = fmt(as.vector(va)), vcov = fmt(as.vector(v0))
  )
  if (is.null(cs$at)) next
  arm_terms <- terms[grepl("arm", terms)]
  L <- diag(length(terms))[match(arm_terms, terms), , drop = FALSE]
  f_rows[[case]] <- data.frame(case = case, terms = paste(arm_terms, collapse = ";"),
                               ddf = fmt(Lb_ddf(L, v0, vcovAdj(fit))))
  by <- if (identical(cs$at, "occasion")) "occasion" else "time"
  spec <- as.formula(paste("~ arm |", by))
  emm <- if (by == "occasion") {
    emmeans(fit, spec, lmer.df = "kenward-roger")
  } else {
    emmeans(fit, spec, at = list(time = cs$at), lmer.df = "kenward-roger")
  }
  emm_rows[[case]] <- emm_table(emm, case, by)
  con_rows[[case]] <- contrast_table(emm, case, by, c("none", "holm"))
}
write_rows(fixed_rows, "kr_fixed.csv")
write_rows(vcov_rows, "kr_vcov.csv")
write_rows(emm_rows, "kr_emmeans.csv")
write_rows(con_rows, "kr_contrasts.csv")
write_rows(f_rows, "kr_ftest.csv")
write_versions("kr_versions.txt",
               c("lme4", "lmerTest", "emmeans", "pbkrtest", "Matrix", "minqa"),
               "optimizer: bobyqa, rhoend = 1e-12, maxfun = 1e6")
