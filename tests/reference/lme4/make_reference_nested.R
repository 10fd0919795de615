# lme4 + lmerTest + emmeans references for the partially nested model,
# imrstats.mixed(..., cluster = "cluster"). Run from this folder:
#   Rscript --vanilla make_reference_nested.R
#
# Data: nested_13.csv and nested_int.csv, written by make_data.py from imrstats.simulate_trial
# (IMR participants in therapy groups, column cluster; TAU participants have none).
# The model: the in-group indicator imr (1 when cluster is set) and a grouping factor
# group = cluster, or the participant's own id when cluster is missing (singleton clusters,
# whose group effect is multiplied by imr = 0 and so does not exist):
#   cluster_random = "slope":     value ~ time * arm + (time | participant) + (0 + imr:time | group)
#   cluster_random = "intercept": ... + (0 + imr | group)
#   cluster_random = "both":      ... + (0 + imr + imr:time | group)   (correlated)
#   cluster_random = "none":      the unclustered model, for the df comparison
# (participant part (1 | participant) for random = "intercept").
# As make_reference.R: lmerTest::lmer with bobyqa (rhoend 1e-12), from lme4's start and three
# other starting values of theta, the best optimum kept. Fixtures (17 significant digits):
#   nested_fixed.csv, nested_random.csv, nested_fit.csv, nested_emmeans.csv,
#   nested_contrasts.csv (columns as the unnested fixtures; nested_fit.csv has the number of
#   therapy groups, nclusters, and theta1..theta6).
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})
options(warn = 1)
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

read_nested <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                arm = "character", cluster = "character", occasion = "character",
                time = "numeric", value = "numeric"), na.strings = "")
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$imr <- as.numeric(!is.na(d$cluster))
  d$group <- ifelse(is.na(d$cluster), d$participant, d$cluster)
  d
}
datasets <- list(nested_13 = read_nested("nested_13"), nested_int = read_nested("nested_int"))

ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.singular = "ignore")
cluster_term <- c(slope = " + (0 + imr:time | group)", intercept = " + (0 + imr | group)",
                  both = " + (0 + imr + imr:time | group)", none = "")
cases <- list()
add <- function(dataset, random, cluster_random, method) {
  re <- if (random == "slope") "(time | participant)" else "(1 | participant)"
  cases[[length(cases) + 1]] <<- list(
    case = paste(dataset, random, cluster_random, method, sep = "-"), dataset = dataset,
    random = random, cluster_random = cluster_random, method = method,
    formula = as.formula(paste("value ~ time * arm +", re, cluster_term[[cluster_random]]))
  )
}
for (method in c("REML", "ML")) {
  add("nested_13", "slope", "slope", method)
  add("nested_int", "intercept", "intercept", method)
}
add("nested_13", "slope", "none", "REML")
add("nested_13", "slope", "both", "REML")
add("nested_13", "intercept", "slope", "REML")
add("nested_int", "slope", "both", "REML")

fixed_rows <- list(); random_rows <- list(); fit_rows <- list(); fits <- list()
for (cs in cases) {
  d <- datasets[[cs$dataset]]
  fit <- NULL
  for (k in 1:4) {
    cand <- if (k == 1) {
      lmerTest::lmer(cs$formula, data = d, REML = cs$method == "REML", control = ctrl)
    } else {
      lower <- getME(fit, "lower")
      diag <- c(1, 0.5, 0.1)[k - 1]; off <- c(0, 0.5, -0.5)[k - 1]
      st <- ifelse(is.finite(lower), diag, off)
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
  th <- c(getME(fit, "theta"), rep(NA, 6))[1:6]
  fit_rows[[cs$case]] <- data.frame(
    case = cs$case, dataset = cs$dataset, random = cs$random,
    cluster_random = cs$cluster_random, method = cs$method, nobs = nobs(fit),
    ngroups = unname(ngrps(fit)[["participant"]]),
    nclusters = length(unique(d$cluster[!is.na(d$cluster) & !is.na(d$value)])),
    loglik = fmt(as.numeric(logLik(fit))), aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
    deviance = fmt(if (cs$method == "REML") REMLcrit(fit) else deviance(fit)),
    sigma = fmt(sigma(fit)), theta1 = fmt(th[1]), theta2 = fmt(th[2]), theta3 = fmt(th[3]),
    theta4 = fmt(th[4]), theta5 = fmt(th[5]), theta6 = fmt(th[6]),
    singular = isSingular(fit), deviance_default_start = fmt(default_dev)
  )
}
write.csv(do.call(rbind, fixed_rows), "nested_fixed.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, random_rows), "nested_random.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, fit_rows), "nested_fit.csv", row.names = FALSE, quote = FALSE)

emm_cases <- list(
  list(case = "nested_13-slope-slope-REML", at = list(time = c(0, 6, 12))),
  list(case = "nested_13-slope-slope-ML", at = list(time = c(0, 6, 12))),
  list(case = "nested_int-intercept-intercept-REML", at = list(time = c(0, 12)))
)
emm_rows <- list(); con_rows <- list()
for (ec in emm_cases) {
  fit <- fits[[ec$case]]
  emm <- emmeans(fit, ~ arm | time, at = ec$at, lmer.df = "satterthwaite")
  s <- as.data.frame(summary(emm))
  emm_rows[[ec$case]] <- data.frame(
    case = ec$case, arm = as.character(s$arm), time = fmt(s$time), estimate = fmt(s$emmean),
    std_error = fmt(s$SE), df = fmt(s$df), ci_low = fmt(s$lower.CL), ci_high = fmt(s$upper.CL)
  )
  con <- contrast(emm, "trt.vs.ctrl")
  for (adj in c("none", "holm", "bonferroni", "sidak")) {
    cs <- as.data.frame(summary(con, by = NULL, adjust = adj, infer = c(TRUE, TRUE)))
    con_rows[[paste(ec$case, adj)]] <- data.frame(
      case = ec$case, adjust = adj, contrast = gsub(" ", "", as.character(cs$contrast)),
      time = fmt(cs$time), estimate = fmt(cs$estimate), std_error = fmt(cs$SE),
      df = fmt(cs$df), statistic = fmt(cs$t.ratio), p_value = fmt(cs$p.value),
      ci_low = fmt(cs$lower.CL), ci_high = fmt(cs$upper.CL)
    )
  }
}
write.csv(do.call(rbind, emm_rows), "nested_emmeans.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, con_rows), "nested_contrasts.csv", row.names = FALSE, quote = FALSE)
