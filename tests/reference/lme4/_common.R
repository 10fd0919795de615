# Shared by the lme4 scripts (make_reference*.R, run from this folder; each sources this file):
# data readers, the bobyqa settings, the multi-start fit and the fixture tables that several
# scripts write. Numbers with 17 significant digits (fmt, from ../_common.R).
source("../_common.R")
load_packages("lme4", "lmerTest", "emmeans")

# A seeded trial written by make_data.py (trial_*.csv, nested_*.csv: R reads exactly the numbers
# Python reads). occasion: treatment contrasts, baseline first. With a cluster column (the
# partially nested model): imr = 1 when cluster is set, and the grouping factor group = cluster,
# or the participant's own id when cluster is missing (singleton clusters, whose group effect is
# multiplied by imr = 0 and so does not exist).
read_trial <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                arm = "character", occasion = "character", time = "numeric",
                value = "numeric"), na.strings = "")
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = c("baseline", "3m", "6m", "12m"))
  if ("cluster" %in% names(d)) {
    d$cluster <- as.character(d$cluster)
    d$imr <- as.numeric(!is.na(d$cluster))
    d$group <- ifelse(is.na(d$cluster), d$participant, d$cluster)
  }
  d
}
# Named list of datasets: sleepstudy.csv (written by make_reference.R) or a trial.
read_datasets <- function(names) {
  sapply(names, function(n) {
    if (n == "sleepstudy") {
      read.csv("sleepstudy.csv", colClasses = c("character", "numeric", "numeric"))
    } else {
      read_trial(n)
    }
  }, simplify = FALSE)
}
# IMR therapy groups with at least one observed outcome.
n_clusters <- function(d) length(unique(d$cluster[!is.na(d$cluster) & !is.na(d$value)]))

ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.singular = "ignore")

# value ~ fixed + participant term (+ therapy-group term of the partially nested model).
participant_term <- c(slope = "(time | participant)", intercept = "(1 | participant)")
cluster_term <- c(slope = "(0 + imr:time | group)", intercept = "(0 + imr | group)",
                  both = "(0 + imr + imr:time | group)")
mixed_formula <- function(fixed, random, cluster = "none") {
  terms <- c(fixed, participant_term[[random]], if (cluster != "none") cluster_term[[cluster]])
  as.formula(paste("value ~", paste(terms, collapse = " + ")))
}

# Starting values of theta other than lme4's own.
# Fixed ones (make_reference.R, make_reference_effect.R): 3 for (time | participant), 2 for
# (1 | participant).
grid_starts <- function(random) {
  if (random == "slope") list(c(0.5, 0.5, 0.5), c(1, -0.5, 1), c(0.1, 0.1, 0.1)) else list(0.5, 0.1)
}
# Any random part: every standard deviation 1, 0.5, 0.1 with every correlation parameter
# 0, 0.5, -0.5 (told apart by their lower bound, -Inf).
lower_starts <- function(fit) {
  lower <- getME(fit, "lower")
  lapply(1:3, function(k) ifelse(is.finite(lower), c(1, 0.5, 0.1)[k], c(0, 0.5, -0.5)[k]))
}

# lmerTest::lmer (bobyqa, ctrl) from lme4's start and from each of `starts` (a list of theta, or a
# function of lme4's fit giving one); another start replaces the best only when its criterion
# (REML criterion or deviance) is lower by more than 1e-10. polish: then one restart from the best
# theta, kept when its criterion is lower at all. Returns the fit and the criterion reached from
# lme4's own start (default_dev).
fit_best <- function(formula, d, reml, starts, polish = FALSE) {
  crit <- function(m) if (reml) REMLcrit(m) else deviance(m)
  fit <- lmerTest::lmer(formula, data = d, REML = reml, control = ctrl)
  best <- default_dev <- crit(fit)
  if (is.function(starts)) starts <- starts(fit)
  for (st in starts) {
    cand <- lmerTest::lmer(formula, data = d, REML = reml, control = ctrl,
                           start = list(theta = st))
    dev <- crit(cand)
    if (dev < best - 1e-10) {
      fit <- cand; best <- dev
    }
  }
  if (polish) {
    # bobyqa's end point wanders by ~1e-6 in theta along flat directions; a restart moves it
    # closer to the optimum.
    cand <- lmerTest::lmer(formula, data = d, REML = reml, control = ctrl,
                           start = list(theta = getME(fit, "theta")))
    dev <- crit(cand)
    if (dev < best) {
      fit <- cand; best <- dev
    }
  }
  list(fit = fit, default_dev = default_dev)
}

# Fixture rows of one fit. fixed: case, term, estimate, std_error, df, statistic, p_value, ci_low,
# ci_high (CI = estimate -/+ qt(0.975, df) * std_error).
fixed_table <- function(fit, case, ddf = "Satterthwaite") {
  co <- summary(fit, ddf = ddf)$coefficients
  q <- qt(0.975, co[, "df"])
  data.frame(
    case = case, term = rownames(co), estimate = fmt(co[, "Estimate"]),
    std_error = fmt(co[, "Std. Error"]), df = fmt(co[, "df"]), statistic = fmt(co[, "t value"]),
    p_value = fmt(co[, "Pr(>|t|)"]), ci_low = fmt(co[, "Estimate"] - q * co[, "Std. Error"]),
    ci_high = fmt(co[, "Estimate"] + q * co[, "Std. Error"])
  )
}
# random: case, group, var1, var2, vcov, sdcor (as.data.frame(VarCorr(fit))).
random_table <- function(fit, case) {
  vc <- as.data.frame(VarCorr(fit))
  data.frame(
    case = case, group = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
    var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = fmt(vc$vcov), sdcor = fmt(vc$sdcor)
  )
}
# fit: the columns `...` (case, dataset, ...), then loglik, aic, bic, deviance (the criterion),
# sigma, theta1..theta<ntheta> (NA beyond the model's), singular, deviance_default_start.
fit_row <- function(fit, reml, default_dev, ntheta, ...) {
  th <- c(getME(fit, "theta"), rep(NA, ntheta))[seq_len(ntheta)]
  data.frame(
    ..., loglik = fmt(as.numeric(logLik(fit))), aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
    deviance = fmt(if (reml) REMLcrit(fit) else deviance(fit)), sigma = fmt(sigma(fit)),
    setNames(as.list(fmt(th)), paste0("theta", seq_len(ntheta))),
    singular = isSingular(fit), deviance_default_start = fmt(default_dev)
  )
}

# The partially nested model (make_reference_nested.R, make_reference_occasion.R): one case per
# spec c(dataset, random, cluster_random, method), named dataset-random-cluster_random-method.
cluster_cases <- function(specs, fixed) {
  lapply(specs, function(s) {
    list(case = paste(s, collapse = "-"), dataset = s[1], random = s[2], cluster_random = s[3],
         method = s[4], formula = mixed_formula(fixed, s[2], s[3]))
  })
}
# Fits each case (fit_best from lme4's start and lower_starts, polish as there) and writes
# <prefix>_fixed.csv, <prefix>_random.csv and <prefix>_fit.csv (theta1..theta6; nclusters, NA for
# data without clusters and, unless count_none, for cluster_random = "none"). Returns the fits.
fit_cluster_cases <- function(cases, datasets, prefix, polish = FALSE, count_none = TRUE) {
  fixed_rows <- list(); random_rows <- list(); fit_rows <- list(); fits <- list()
  for (cs in cases) {
    d <- datasets[[cs$dataset]]
    reml <- cs$method == "REML"
    best <- fit_best(cs$formula, d, reml, lower_starts, polish = polish)
    fit <- fits[[cs$case]] <- best$fit
    fixed_rows[[cs$case]] <- fixed_table(fit, cs$case)
    random_rows[[cs$case]] <- random_table(fit, cs$case)
    counted <- "cluster" %in% names(d) && (count_none || cs$cluster_random != "none")
    fit_rows[[cs$case]] <- fit_row(
      fit, reml, best$default_dev, 6, case = cs$case, dataset = cs$dataset, random = cs$random,
      cluster_random = cs$cluster_random, method = cs$method, nobs = nobs(fit),
      ngroups = unname(ngrps(fit)[["participant"]]),
      nclusters = if (counted) n_clusters(d) else NA
    )
  }
  write_rows(fixed_rows, paste0(prefix, "_fixed.csv"))
  write_rows(random_rows, paste0(prefix, "_random.csv"))
  write_rows(fit_rows, paste0(prefix, "_fit.csv"))
  fits
}

# Columns naming where a marginal mean or contrast is: of `cols` ("time", "occasion"), the one
# that is `by` holds the value, the others "NA".
at_columns <- function(s, by, cols) {
  sapply(cols, function(col) {
    if (col != by) "NA" else if (col == "time") fmt(s$time) else as.character(s[[col]])
  }, simplify = FALSE)
}
# emmeans: case, arm, <cols>, estimate, std_error, df, ci_low, ci_high.
emm_table <- function(emm, case, by, cols = c("time", "occasion")) {
  s <- as.data.frame(summary(emm))
  data.frame(
    case = case, arm = as.character(s$arm), at_columns(s, by, cols),
    estimate = fmt(s$emmean), std_error = fmt(s$SE), df = fmt(s$df),
    ci_low = fmt(s$lower.CL), ci_high = fmt(s$upper.CL)
  )
}
# contrasts (IMR - TAU: trt.vs.ctrl of emm), summarised with by = NULL so that the adjustment
# family is every row, one block per adjustment: case, adjust, contrast, <cols>, estimate,
# std_error, df, statistic, p_value, ci_low, ci_high.
contrast_table <- function(emm, case, by, adjusts, cols = c("time", "occasion")) {
  con <- contrast(emm, "trt.vs.ctrl")
  do.call(rbind, lapply(adjusts, function(adj) {
    cn <- as.data.frame(summary(con, by = NULL, adjust = adj, infer = c(TRUE, TRUE)))
    data.frame(
      case = case, adjust = adj, contrast = gsub(" ", "", as.character(cn$contrast)),
      at_columns(cn, by, cols), estimate = fmt(cn$estimate), std_error = fmt(cn$SE),
      df = fmt(cn$df), statistic = fmt(cn$t.ratio), p_value = fmt(cn$p.value),
      ci_low = fmt(cn$lower.CL), ci_high = fmt(cn$upper.CL)
    )
  }))
}

# Effect sizes. SD_raw "baseline": pooled within-arm SD of the observed outcome at the baseline
# rows (sd() per arm, pooled with n - 1 weights).
sd_baseline <- function(d, baseline) {
  b <- d[baseline & !is.na(d$value), ]
  s <- tapply(b$value, b$arm, sd)
  n <- tapply(b$value, b$arm, length)
  sqrt(sum((n - 1) * s^2) / sum(n - 1))
}
# SD_raw "model": sqrt(z0' G z0 + sigma^2), z0 = (1, t0), G = VarCorr(fit)$participant.
sd_model <- function(fit, t0) {
  G <- VarCorr(fit)$participant
  z0 <- c(1, t0)[seq_len(nrow(G))]
  sqrt(drop(t(z0) %*% G %*% z0) + sigma(fit)^2)
}
# d at each occasion: the IMR - TAU contrasts cn (summary with infer) over SD_raw sr: term,
# occasion, estimate, std_error, df, ci_low, ci_high, variance.
scaled_contrasts <- function(cn, sr) {
  data.frame(
    term = as.character(cn$contrast), occasion = as.character(cn$occasion),
    estimate = fmt(cn$estimate / sr), std_error = fmt(cn$SE / sr), df = fmt(cn$df),
    ci_low = fmt(cn$lower.CL / sr), ci_high = fmt(cn$upper.CL / sr),
    variance = fmt((cn$SE / sr)^2)
  )
}
