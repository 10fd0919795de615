# nlme references for imrstats.mixed(residual = "ar1" / "heteroscedastic_by_arm")
# (run from this folder: Rscript --vanilla make_reference.R).
#
# Data: resid_ar1.csv and resid_hetero.csv, written by make_data.py (numpy Generator; committed,
# so R and Python read exactly the same numbers). Rows with a missing value are dropped.
# Models (nlme::lme):
#   residual "ar1":  correlation = corAR1(form = ~ occ_index | participant), occ_index = the
#                    position of the occasion in baseline, 3m, 6m, 12m (0..3; a missed visit
#                    keeps its gap)
#   residual "heteroscedastic_by_arm": weights = varIdent(form = ~ 1 | arm)
#   random "intercept": random = ~ 1 | participant; "slope": random = ~ time | participant
#   fixed value ~ time * arm (numeric time, months) or value ~ occasion * arm (treatment
#   contrasts of the occasion, baseline first).
# Each model is fitted with three optimisers at tight tolerances (nlminb; optim BFGS with
# ndeps = 1e-5; optim Nelder-Mead, skipped for one-parameter fits) and the one with the
# highest log-likelihood is kept (its name is written to fit.csv): no single one is reliably
# the tightest (they differ by up to 1e-6 in the log-likelihood and 3e-4 in rho here).
# Fixtures (numbers printed with 17 significant digits):
#   fit.csv       case, dataset, time, random, residual, method, optimizer, nobs, ngroups,
#                 loglik, aic, bic, sigma, rho, sd_ratio_IMR, sd_TAU, sd_IMR, var_intercept,
#                 var_slope, cov_intercept_slope, loglik_nlminb, loglik_bfgs, loglik_nm
#                 (each optimiser's log-likelihood; -Inf when lme stopped with an error)
#   fixed.csv     case, term, estimate, std_error (summary(fit)$tTable; vcov(fit))
#   contrasts.csv case, time, occasion, estimate, std_error: IMR - TAU at months 0, 3, 6, 12
#                 (or at each occasion), L beta and sqrt(L vcov(fit) L') from the fixed
#                 effects and vcov (emmeans has no method for these fits' df; the estimate
#                 and SE are what imrstats' contrast() must reproduce)
#   lrt.csv       case, npar_iid, npar, loglik_iid, loglik, statistic, df, p_value
#                 (anova(iid fit, structured fit): same fixed effects, REML and ML)
#   versions.txt
# The partially nested model (cluster=) with these residuals: make_reference_nested.R, sourced at
# the end (nested_fit.csv, nested_fixed.csv, nested_iid_check.csv).
# nlme has no Satterthwaite df: the df are not compared here (see tests/reference/README.md).
suppressPackageStartupMessages(library(nlme))
options(warn = 1)

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
OCC <- c("baseline", "3m", "6m", "12m")

read_trial <- function(name) {
  d <- read.csv(paste0(name, ".csv"), colClasses = c(participant = "character",
                                                     arm = "character", occasion = "character",
                                                     time = "numeric", value = "numeric"))
  d <- d[!is.na(d$value), ]
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = OCC)
  d$occ_index <- as.integer(d$occasion) - 1L
  d
}
datasets <- list(resid_ar1 = read_trial("resid_ar1"), resid_hetero = read_trial("resid_hetero"))

base_ctrl <- list(maxIter = 500, msMaxIter = 5000, msMaxEval = 50000, tolerance = 1e-12,
                  msTol = 1e-16, niterEM = 0, returnObject = FALSE)  # optim reltol
controls <- list(
  nlminb = c(base_ctrl, opt = "nlminb"),
  bfgs = c(base_ctrl, opt = "optim", optimMethod = "BFGS"),
  nm = c(base_ctrl, opt = "optim", optimMethod = "Nelder-Mead")
)

fit_one <- function(d, fixed, random, residual, method, ctrl) {
  rnd <- if (random == "slope") ~ time | participant else ~ 1 | participant
  cor <- if (residual == "ar1") corAR1(form = ~ occ_index | participant) else NULL
  wts <- if (residual == "heteroscedastic_by_arm") varIdent(form = ~ 1 | arm) else NULL
  if (ctrl$opt == "optim" && ctrl$optimMethod == "BFGS") {
    k <- (if (random == "slope") 3 else 1) + (residual != "iid")
    ctrl$ndeps <- rep(1e-5, k)
  }
  tryCatch(
    lme(fixed, random = rnd, correlation = cor, weights = wts, data = d, method = method,
        control = do.call(lmeControl, ctrl)),
    error = function(e) NULL
  )
}

best_fit <- function(d, fixed, random, residual, method) {
  k <- (if (random == "slope") 3 else 1) + (residual != "iid")
  fits <- lapply(controls, function(ctrl) {
    if (k == 1 && identical(ctrl$optimMethod, "Nelder-Mead")) return(NULL)  # 1-D: not for NM
    fit_one(d, fixed, random, residual, method, ctrl)
  })
  ll <- sapply(fits, function(f) if (is.null(f)) -Inf else as.numeric(logLik(f)))
  list(fit = fits[[which.max(ll)]], optimizer = names(controls)[which.max(ll)], ll = ll)
}

cases <- list()
add <- function(dataset, time, random, residual, method) {
  cases[[length(cases) + 1]] <<- list(
    case = paste(dataset, time, random, residual, method, sep = "-"), dataset = dataset,
    time = time, random = random, residual = residual, method = method
  )
}
for (dataset in names(datasets)) {
  for (residual in c("ar1", "heteroscedastic_by_arm")) {
    for (random in c("intercept", "slope")) {
      for (method in c("REML", "ML")) add(dataset, "time", random, residual, method)
    }
  }
}
add("resid_ar1", "occasion", "intercept", "ar1", "REML")
add("resid_hetero", "occasion", "intercept", "heteroscedastic_by_arm", "REML")

fit_rows <- list(); fixed_rows <- list(); con_rows <- list(); lrt_rows <- list()
for (cs in cases) {
  d <- datasets[[cs$dataset]]
  fixed <- if (cs$time == "time") value ~ time * arm else value ~ occasion * arm
  b <- best_fit(d, fixed, cs$random, cs$residual, cs$method)
  fit <- b$fit
  G <- getVarCov(fit)
  s <- fit$sigma
  rho <- if (cs$residual == "ar1") coef(fit$modelStruct$corStruct, unconstrained = FALSE) else NA
  ratio <- NA
  if (cs$residual == "heteroscedastic_by_arm") {
    # varIdent: SD ratios to the stratum fixed at 1 (TAU here: checked by name)
    cf <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    ratio <- cf[["IMR"]] / cf[["TAU"]]
    s <- s * cf[["TAU"]]
  }
  fit_rows[[length(fit_rows) + 1]] <- data.frame(
    case = cs$case, dataset = cs$dataset, time = cs$time, random = cs$random,
    residual = cs$residual, method = cs$method, optimizer = b$optimizer,
    nobs = fit$dims$N, ngroups = fit$dims$ngrps[["participant"]],
    loglik = fmt(as.numeric(logLik(fit))), aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
    sigma = fmt(s), rho = fmt(rho), sd_ratio_IMR = fmt(ratio),
    sd_TAU = fmt(s), sd_IMR = fmt(if (is.na(ratio)) s else s * ratio),
    var_intercept = fmt(G[1, 1]), var_slope = fmt(if (cs$random == "slope") G[2, 2] else NA),
    cov_intercept_slope = fmt(if (cs$random == "slope") G[1, 2] else NA),
    loglik_nlminb = fmt(b$ll[["nlminb"]]), loglik_bfgs = fmt(b$ll[["bfgs"]]),
    loglik_nm = fmt(b$ll[["nm"]])
  )
  beta <- fixef(fit)
  V <- vcov(fit)
  fixed_rows[[length(fixed_rows) + 1]] <- data.frame(
    case = cs$case, term = names(beta), estimate = fmt(unname(beta)),
    std_error = fmt(unname(sqrt(diag(V))))
  )
  if (cs$time == "time") {
    for (t in c(0, 3, 6, 12)) {
      L <- c(0, 0, 1, t)
      con_rows[[length(con_rows) + 1]] <- data.frame(
        case = cs$case, time = fmt(t), occasion = "NA", estimate = fmt(sum(L * beta)),
        std_error = fmt(sqrt(drop(t(L) %*% V %*% L)))
      )
    }
  } else {
    for (k in seq_along(OCC)) {
      L <- setNames(rep(0, length(beta)), names(beta))
      L["armIMR"] <- 1
      if (k > 1) L[paste0("occasion", OCC[k], ":armIMR")] <- 1
      con_rows[[length(con_rows) + 1]] <- data.frame(
        case = cs$case, time = "NA", occasion = OCC[k], estimate = fmt(sum(L * beta)),
        std_error = fmt(sqrt(drop(t(L) %*% V %*% L)))
      )
    }
  }
  iid <- best_fit(d, fixed, cs$random, "iid", cs$method)$fit
  a <- anova(iid, fit)
  lrt_rows[[length(lrt_rows) + 1]] <- data.frame(
    case = cs$case, npar_iid = a$df[1], npar = a$df[2], loglik_iid = fmt(a$logLik[1]),
    loglik = fmt(a$logLik[2]), statistic = fmt(a$L.Ratio[2]), df = a$df[2] - a$df[1],
    p_value = fmt(a[["p-value"]][2])
  )
}
write.csv(do.call(rbind, fit_rows), "fit.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, fixed_rows), "fixed.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, con_rows), "contrasts.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, lrt_rows), "lrt.csv", row.names = FALSE, quote = FALSE)

writeLines(c(
  paste("R", paste(R.version$major, R.version$minor, sep = ".")),
  paste("nlme", as.character(packageVersion("nlme")))
), "versions.txt")

source("make_reference_nested.R")  # the partially nested model (cluster =)
