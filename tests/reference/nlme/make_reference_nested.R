# nlme references for imrstats.mixed(residual = "ar1" / "heteroscedastic_by_arm", cluster = ...),
# the partially nested model with structured residuals. Sourced by make_reference.R (uses its
# fmt, base_ctrl and controls); run from this folder.
#
# Data: nested_ar1.csv and nested_hetero.csv, written by make_data.py (192 participants, the 96
# IMR ones in 12 therapy groups, column cluster, empty for TAU). Rows with a missing value are
# dropped. in_group = 1 for a participant with a therapy group, else 0; cl = the therapy group,
# or the participant's own id for TAU (a singleton cluster whose group effect is multiplied by
# in_group = 0 and so does not exist); in_group_time = in_group * time. Models (nlme::lme):
#   random = list(cl = <group term>, participant = pdSymm(~ time))   (random "slope"; ~ 1 for
#            "intercept") with the group term, by cluster_random,
#     "slope":     pdSymm(~ 0 + in_group_time)
#     "intercept": pdSymm(~ 0 + in_group)
#     "both":      pdSymm(~ 0 + in_group + in_group_time)   (correlated, as lme4's)
#   residual "ar1": correlation = corAR1(form = ~ occ_index | cl/participant)
#   residual "heteroscedastic_by_arm": weights = varIdent(form = ~ 1 | arm)
#   fixed value ~ time * arm.
# The formulation is checked against lme4 first: the iid model fitted this way on
# ../lme4/nested_13.csv (random "slope", cluster_random "slope") gives lme4's log-likelihood
# (nested_iid_check.csv; the tests compare it with ../lme4/nested_fit.csv).
# As make_reference.R, each model is fitted with three optimisers and the best kept.
# Fixtures (17 significant digits):
#   nested_fit.csv    case, dataset, random, cluster_random, residual, method, optimizer, nobs,
#                     ngroups (participants), nclusters (therapy groups), loglik, aic, bic,
#                     sigma (the TAU residual SD), rho, sd_ratio_IMR, var_intercept, var_slope,
#                     cov_intercept_slope (participant), cl_var_intercept, cl_var_slope,
#                     cl_cov_intercept_slope (therapy group; NA when not in the model),
#                     loglik_iid (the same model with iid residuals), loglik_nlminb,
#                     loglik_bfgs, loglik_nm
#   nested_fixed.csv  case, term, estimate, std_error (summary(fit)$tTable; vcov(fit))
#   nested_iid_check.csv  case, method, loglik
read_nested <- function(path) {
  d <- read.csv(path, colClasses = c(participant = "character", arm = "character",
                                     cluster = "character", occasion = "character",
                                     time = "numeric", value = "numeric"))
  d <- d[!is.na(d$value), ]
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = OCC)
  d$occ_index <- as.integer(d$occasion) - 1L
  d$in_group <- as.numeric(!is.na(d$cluster) & d$cluster != "")
  d$cl <- ifelse(d$in_group == 1, d$cluster, paste0("solo_", d$participant))
  d$in_group_time <- d$in_group * d$time
  d
}
nested_data <- list(nested_ar1 = read_nested("nested_ar1.csv"),
                    nested_hetero = read_nested("nested_hetero.csv"))

n_re <- function(random, cluster_random) {
  (if (random == "slope") 3 else 1) + (if (cluster_random == "both") 3 else 1)
}

fit_nested <- function(d, random, cluster_random, residual, method, ctrl) {
  gform <- switch(cluster_random, slope = ~ 0 + in_group_time, intercept = ~ 0 + in_group,
                  both = ~ 0 + in_group + in_group_time)
  pform <- if (random == "slope") ~ time else ~ 1
  rnd <- list(cl = pdSymm(gform), participant = pdSymm(pform))
  cor <- if (residual == "ar1") corAR1(form = ~ occ_index | cl / participant) else NULL
  wts <- if (residual == "heteroscedastic_by_arm") varIdent(form = ~ 1 | arm) else NULL
  if (ctrl$opt == "optim" && ctrl$optimMethod == "BFGS") {
    ctrl$ndeps <- rep(1e-5, n_re(random, cluster_random) + (residual != "iid"))
  }
  tryCatch(
    lme(value ~ time * arm, random = rnd, correlation = cor, weights = wts, data = d,
        method = method, control = do.call(lmeControl, ctrl)),
    error = function(e) NULL
  )
}

best_nested <- function(d, random, cluster_random, residual, method) {
  fits <- lapply(controls, function(ctrl) {
    fit_nested(d, random, cluster_random, residual, method, ctrl)
  })
  ll <- sapply(fits, function(f) if (is.null(f)) -Inf else as.numeric(logLik(f)))
  list(fit = fits[[which.max(ll)]], optimizer = names(controls)[which.max(ll)], ll = ll)
}

# The formulation against lme4 (iid residuals, the lme4 nested_13 trial).
d13 <- read_nested("../lme4/nested_13.csv")
check_rows <- list()
for (method in c("REML", "ML")) {
  f <- best_nested(d13, "slope", "slope", "iid", method)$fit
  check_rows[[method]] <- data.frame(case = paste0("nested_13-slope-slope-", method),
                                     method = method, loglik = fmt(as.numeric(logLik(f))))
}
write.csv(do.call(rbind, check_rows), "nested_iid_check.csv", row.names = FALSE, quote = FALSE)

nested_cases <- list()
for (dataset in names(nested_data)) {
  residual <- if (dataset == "nested_ar1") "ar1" else "heteroscedastic_by_arm"
  for (cluster_random in c("slope", "intercept", "both")) {
    for (method in c("REML", "ML")) {
      nested_cases[[length(nested_cases) + 1]] <- c(dataset, "slope", cluster_random, residual,
                                                    method)
    }
  }
  nested_cases[[length(nested_cases) + 1]] <- c(dataset, "intercept", "intercept", residual,
                                                "REML")
}

fit_rows <- list(); fixed_rows <- list()
for (cs in nested_cases) {
  names(cs) <- c("dataset", "random", "cluster_random", "residual", "method")
  case <- paste(cs, collapse = "-")
  d <- nested_data[[cs[["dataset"]]]]
  b <- best_nested(d, cs[["random"]], cs[["cluster_random"]], cs[["residual"]], cs[["method"]])
  fit <- b$fit
  iid <- best_nested(d, cs[["random"]], cs[["cluster_random"]], "iid", cs[["method"]])$fit
  pd <- lapply(pdMatrix(fit$modelStruct$reStruct), function(m) m * fit$sigma^2)
  P <- pd$participant
  G <- pd$cl
  s <- fit$sigma
  rho <- if (cs[["residual"]] == "ar1") {
    coef(fit$modelStruct$corStruct, unconstrained = FALSE)
  } else {
    NA
  }
  ratio <- NA
  if (cs[["residual"]] == "heteroscedastic_by_arm") {
    cf <- coef(fit$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)
    ratio <- cf[["IMR"]] / cf[["TAU"]]
    s <- s * cf[["TAU"]]
  }
  gi <- match("in_group", colnames(G))
  gs <- match("in_group_time", colnames(G))
  fit_rows[[case]] <- data.frame(
    case = case, dataset = cs[["dataset"]], random = cs[["random"]],
    cluster_random = cs[["cluster_random"]], residual = cs[["residual"]],
    method = cs[["method"]], optimizer = b$optimizer, nobs = fit$dims$N,
    ngroups = fit$dims$ngrps[["participant"]], nclusters = length(unique(d$cluster[d$in_group == 1])),
    loglik = fmt(as.numeric(logLik(fit))), aic = fmt(AIC(fit)), bic = fmt(BIC(fit)),
    sigma = fmt(s), rho = fmt(rho), sd_ratio_IMR = fmt(ratio),
    var_intercept = fmt(P[1, 1]), var_slope = fmt(if (nrow(P) > 1) P[2, 2] else NA),
    cov_intercept_slope = fmt(if (nrow(P) > 1) P[1, 2] else NA),
    cl_var_intercept = fmt(if (is.na(gi)) NA else G[gi, gi]),
    cl_var_slope = fmt(if (is.na(gs)) NA else G[gs, gs]),
    cl_cov_intercept_slope = fmt(if (is.na(gi) || is.na(gs)) NA else G[gi, gs]),
    loglik_iid = fmt(as.numeric(logLik(iid))),
    loglik_nlminb = fmt(b$ll[["nlminb"]]), loglik_bfgs = fmt(b$ll[["bfgs"]]),
    loglik_nm = fmt(b$ll[["nm"]])
  )
  beta <- fixef(fit)
  fixed_rows[[case]] <- data.frame(
    case = case, term = names(beta), estimate = fmt(unname(beta)),
    std_error = fmt(unname(sqrt(diag(vcov(fit)))))
  )
}
write.csv(do.call(rbind, fit_rows), "nested_fit.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, fixed_rows), "nested_fixed.csv", row.names = FALSE, quote = FALSE)
