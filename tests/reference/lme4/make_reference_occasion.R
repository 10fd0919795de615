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
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(emmeans)
})
options(warn = 1)

local({
  fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
  read_data <- function(name) {
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
  datasets <- list(trial_occasion = read_data("trial_occasion"),
                   nested_13 = read_data("nested_13"))
  ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                      check.conv.singular = "ignore")
  cluster_term <- c(slope = " + (0 + imr:time | group)",
                    both = " + (0 + imr + imr:time | group)", none = "")
  cases <- list()
  add <- function(dataset, random, cluster_random, method) {
    re <- if (random == "slope") "(time | participant)" else "(1 | participant)"
    cases[[length(cases) + 1]] <<- list(
      case = paste(dataset, random, cluster_random, method, sep = "-"), dataset = dataset,
      random = random, cluster_random = cluster_random, method = method,
      formula = as.formula(paste("value ~ occasion * arm +", re, cluster_term[[cluster_random]]))
    )
  }
  for (method in c("REML", "ML")) {
    add("trial_occasion", "slope", "none", method)
    add("nested_13", "slope", "slope", method)
  }
  add("nested_13", "slope", "both", "REML")
  add("nested_13", "intercept", "slope", "REML")

  fixed_rows <- list(); random_rows <- list(); fit_rows <- list(); fits <- list()
  for (cs in cases) {
    d <- datasets[[cs$dataset]]
    fit <- NULL
    for (k in 1:5) {
      cand <- if (k == 1) {
        lmerTest::lmer(cs$formula, data = d, REML = cs$method == "REML", control = ctrl)
      } else if (k == 5) {
        # Polish: restart from the best theta (bobyqa's end point wanders by ~1e-6 in theta
        # along flat directions; a restart moves it closer to the optimum).
        lmerTest::lmer(cs$formula, data = d, REML = cs$method == "REML", control = ctrl,
                       start = list(theta = getME(fit, "theta")))
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
      } else if (dev < best - (if (k == 5) 0 else 1e-10)) {
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
    nclusters <- if ("cluster" %in% names(d) && cs$cluster_random != "none") {
      length(unique(d$cluster[!is.na(d$cluster) & !is.na(d$value)]))
    } else {
      NA
    }
    fit_rows[[cs$case]] <- data.frame(
      case = cs$case, dataset = cs$dataset, random = cs$random,
      cluster_random = cs$cluster_random, method = cs$method, nobs = nobs(fit),
      ngroups = unname(ngrps(fit)[["participant"]]), nclusters = nclusters,
      loglik = fmt(as.numeric(logLik(fit))), aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
      deviance = fmt(if (cs$method == "REML") REMLcrit(fit) else deviance(fit)),
      sigma = fmt(sigma(fit)), theta1 = fmt(th[1]), theta2 = fmt(th[2]), theta3 = fmt(th[3]),
      theta4 = fmt(th[4]), theta5 = fmt(th[5]), theta6 = fmt(th[6]),
      singular = isSingular(fit), deviance_default_start = fmt(default_dev)
    )
  }
  write.csv(do.call(rbind, fixed_rows), "occasion_fixed.csv", row.names = FALSE, quote = FALSE)
  write.csv(do.call(rbind, random_rows), "occasion_random.csv", row.names = FALSE, quote = FALSE)
  write.csv(do.call(rbind, fit_rows), "occasion_fit.csv", row.names = FALSE, quote = FALSE)

  # Marginal means by occasion x arm, IMR - TAU at each occasion, and d at each occasion.
  sd_baseline <- function(d) {
    b <- d[d$occasion == "baseline" & !is.na(d$value), ]
    s <- tapply(b$value, b$arm, sd)
    n <- tapply(b$value, b$arm, length)
    sqrt(sum((n - 1) * s^2) / sum(n - 1))
  }
  sd_model <- function(fit, t0) {
    G <- VarCorr(fit)$participant
    z0 <- c(1, t0)[seq_len(nrow(G))]
    sqrt(drop(t(z0) %*% G %*% z0) + sigma(fit)^2)
  }
  emm_rows <- list(); con_rows <- list(); es_rows <- list()
  for (cs in cases) {
    fit <- fits[[cs$case]]
    d <- datasets[[cs$dataset]]
    emm <- emmeans(fit, ~ arm | occasion, lmer.df = "satterthwaite")
    s <- as.data.frame(summary(emm))
    emm_rows[[cs$case]] <- data.frame(
      case = cs$case, arm = as.character(s$arm), occasion = as.character(s$occasion),
      estimate = fmt(s$emmean), std_error = fmt(s$SE), df = fmt(s$df),
      ci_low = fmt(s$lower.CL), ci_high = fmt(s$upper.CL)
    )
    con <- contrast(emm, "trt.vs.ctrl")
    for (adj in c("none", "holm", "bonferroni", "sidak")) {
      cn <- as.data.frame(summary(con, by = NULL, adjust = adj, infer = c(TRUE, TRUE)))
      con_rows[[paste(cs$case, adj)]] <- data.frame(
        case = cs$case, adjust = adj, contrast = gsub(" ", "", as.character(cn$contrast)),
        occasion = as.character(cn$occasion), estimate = fmt(cn$estimate),
        std_error = fmt(cn$SE), df = fmt(cn$df), statistic = fmt(cn$t.ratio),
        p_value = fmt(cn$p.value), ci_low = fmt(cn$lower.CL), ci_high = fmt(cn$upper.CL)
      )
    }
    if (cs$method == "REML" && cs$random == "slope") {
      cn <- as.data.frame(summary(con, infer = c(TRUE, TRUE)))
      used <- d[!is.na(d$value), ]
      sds <- c(baseline = sd_baseline(d))
      # The model-implied SD is not defined for the partially nested model.
      if (cs$cluster_random == "none") sds[["model"]] <- sd_model(fit, min(used$time))
      for (sdk in names(sds)) {
        sr <- sds[[sdk]]
        es_rows[[paste(cs$case, sdk)]] <- data.frame(
          case = cs$case, sd = sdk, term = as.character(cn$contrast),
          occasion = as.character(cn$occasion), estimate = fmt(cn$estimate / sr),
          std_error = fmt(cn$SE / sr), df = fmt(cn$df), ci_low = fmt(cn$lower.CL / sr),
          ci_high = fmt(cn$upper.CL / sr), variance = fmt((cn$SE / sr)^2), sd_raw = fmt(sr)
        )
      }
    }
  }
  write.csv(do.call(rbind, emm_rows), "occasion_emmeans.csv", row.names = FALSE, quote = FALSE)
  write.csv(do.call(rbind, con_rows), "occasion_contrasts.csv", row.names = FALSE, quote = FALSE)
  write.csv(do.call(rbind, es_rows), "occasion_effect_size.csv", row.names = FALSE, quote = FALSE)
})
