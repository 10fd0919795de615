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
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
  library(pbkrtest)
})
options(warn = 1)
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

read_trial <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                arm = "character", occasion = "character", time = "numeric",
                value = "numeric"))
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = c("baseline", "3m", "6m", "12m"))
  d
}
read_nested <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                arm = "character", cluster = "character", occasion = "character",
                time = "numeric", value = "numeric"), na.strings = "")
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$imr <- as.numeric(!is.na(d$cluster))
  d$group <- ifelse(is.na(d$cluster), d$participant, d$cluster)
  d
}
datasets <- list(
  sleepstudy = read.csv("sleepstudy.csv", colClasses = c("character", "numeric", "numeric")),
  trial_slope = read_trial("trial_slope"),
  trial_boundary = read_trial("trial_boundary"),
  trial_occasion = read_trial("trial_occasion"),
  trial_covariates = read_trial("trial_covariates"),
  nested_13 = read_nested("nested_13"),
  nested_int = read_nested("nested_int")
)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.singular = "ignore")
participant_term <- c(slope = "(time | participant)", intercept = "(1 | participant)")
cluster_term <- c(slope = " + (0 + imr:time | group)", intercept = " + (0 + imr | group)",
                  both = " + (0 + imr + imr:time | group)", none = "")

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
  clus <- if (is.null(cs$cluster)) "" else cluster_term[[cs$cluster]]
  case <- paste(c(cs$dataset, cs$random, cs$cluster, "REML"), collapse = "-")
  formula <- as.formula(paste("value ~", cs$fixed, "+", participant_term[[cs$random]], clus))
  d <- datasets[[cs$dataset]]
  fit <- NULL
  for (k in 1:4) {
    cand <- if (k == 1) {
      lmerTest::lmer(formula, data = d, REML = TRUE, control = ctrl)
    } else {
      lower <- getME(fit, "lower")
      st <- ifelse(is.finite(lower), c(1, 0.5, 0.1)[k - 1], c(0, 0.5, -0.5)[k - 1])
      lmerTest::lmer(formula, data = d, REML = TRUE, control = ctrl, start = list(theta = st))
    }
    dev <- REMLcrit(cand)
    if (is.null(fit)) {
      fit <- cand; best <- dev
    } else if (dev < best - 1e-10) {
      fit <- cand; best <- dev
    }
  }
  co <- summary(fit, ddf = "Kenward-Roger")$coefficients
  q <- qt(0.975, co[, "df"])
  fixed_rows[[case]] <- data.frame(
    case = case, term = rownames(co), estimate = fmt(co[, "Estimate"]),
    std_error = fmt(co[, "Std. Error"]), df = fmt(co[, "df"]), statistic = fmt(co[, "t value"]),
    p_value = fmt(co[, "Pr(>|t|)"]), ci_low = fmt(co[, "Estimate"] - q * co[, "Std. Error"]),
    ci_high = fmt(co[, "Estimate"] + q * co[, "Std. Error"]),
    std_error_unadjusted = fmt(sqrt(diag(as.matrix(vcov(fit)))))
  )
  va <- as.matrix(vcovAdj(fit))
  v0 <- as.matrix(vcov(fit))
  terms <- rownames(co)
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
  s <- as.data.frame(summary(emm))
  emm_rows[[case]] <- data.frame(
    case = case, arm = as.character(s$arm),
    time = if (by == "time") fmt(s$time) else "NA",
    occasion = if (by == "occasion") as.character(s$occasion) else "NA",
    estimate = fmt(s$emmean), std_error = fmt(s$SE), df = fmt(s$df),
    ci_low = fmt(s$lower.CL), ci_high = fmt(s$upper.CL)
  )
  con <- contrast(emm, "trt.vs.ctrl")
  for (adj in c("none", "holm")) {
    cn <- as.data.frame(summary(con, by = NULL, adjust = adj, infer = c(TRUE, TRUE)))
    con_rows[[paste(case, adj)]] <- data.frame(
      case = case, adjust = adj, contrast = gsub(" ", "", as.character(cn$contrast)),
      time = if (by == "time") fmt(cn$time) else "NA",
      occasion = if (by == "occasion") as.character(cn$occasion) else "NA",
      estimate = fmt(cn$estimate), std_error = fmt(cn$SE), df = fmt(cn$df),
      statistic = fmt(cn$t.ratio), p_value = fmt(cn$p.value),
      ci_low = fmt(cn$lower.CL), ci_high = fmt(cn$upper.CL)
    )
  }
}
write.csv(do.call(rbind, fixed_rows), "kr_fixed.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, vcov_rows), "kr_vcov.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, emm_rows), "kr_emmeans.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, con_rows), "kr_contrasts.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, f_rows), "kr_ftest.csv", row.names = FALSE, quote = FALSE)
writeLines(c(
  R.version.string,
  paste("lme4", packageVersion("lme4")),
  paste("lmerTest", packageVersion("lmerTest")),
  paste("emmeans", packageVersion("emmeans")),
  paste("pbkrtest", packageVersion("pbkrtest")),
  paste("Matrix", packageVersion("Matrix")),
  paste("minqa", packageVersion("minqa")),
  "optimizer: bobyqa, rhoend = 1e-12, maxfun = 1e6"
), "kr_versions.txt")
