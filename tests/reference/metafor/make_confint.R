# R references for MetaResult.confint(type = "PL" / "GENQ") (metafor 3.8 confint.rma.uni).
# Sourced at the end of make_reference.R (uses its `fmt`, `ctrl`, `sets`, `diag_ni`); it does not run
# alone (needs make_reference.R's objects). Writes, next to itself:
#   confint_types.csv   long format: dataset, mods, method, weights, level, type, quantity, value
#     type "PL":           confint(fit, type = "PL", control = list(tol = 1e-12)) for ML and REML
#     type "GENQ":         the generalised Q-statistic CI (Jackson 2013) of a GENQ fit, computed
#                          here from its definition with uniroot(tol = 1e-12) (metafor's own GENQ
#                          search calls uniroot with its default tol = 1.2e-4)
#     type "GENQ_metafor": metafor's confint(fit, type = "GENQ") itself (tol 1.2e-4)
# CompQuadForm (which metafor calls for P(Q > q), Farebrother's algorithm) is not packaged for
# Debian; a stand-in CompQuadForm::farebrother computing P(Q > q) by Imhof's (1961) integral
# (R's integrate, rel.tol 1e-11) is installed into a temporary library. It is checked against
# pchisq below; the grid has k - p >= 11, where the integrand decays fast enough for integrate().
stopifnot(exists("fmt"), exists("sets"), exists("diag_ni"))  # run by make_reference.R
imhof_sf <- function(q, lambda) {
  s <- max(lambda); lambda <- lambda / s; q <- q / s
  f <- function(u) sapply(u, function(x) {
    if (x == 0) return(0.5 * (sum(lambda) - q))
    sin(0.5 * sum(atan(lambda * x)) - 0.5 * q * x) / (x * prod((1 + (lambda * x)^2)^0.25))
  })
  0.5 + integrate(f, 0, Inf, rel.tol = 1e-11, abs.tol = 1e-14, subdivisions = 10000L)$value / pi
}
stopifnot(abs(imhof_sf(20, rep(1, 11)) - pchisq(20, 11, lower.tail = FALSE)) < 1e-12,
          abs(imhof_sf(5, rep(1, 11)) - pchisq(5, 11, lower.tail = FALSE)) < 1e-12)
if (!requireNamespace("CompQuadForm", quietly = TRUE)) {
  cqf_src <- file.path(tempdir(), "CompQuadForm")
  dir.create(file.path(cqf_src, "R"), recursive = TRUE, showWarnings = FALSE)
  writeLines(c("Package: CompQuadForm", "Version: 0.0.0", "Title: Stand-in (Imhof)",
               "Description: Stand-in for the reference script.", "License: GPL-2",
               "Author: imrstats", "Maintainer: imrstats <none@example.org>"),
             file.path(cqf_src, "DESCRIPTION"))
  writeLines("export(farebrother)", file.path(cqf_src, "NAMESPACE"))
  writeLines(c(paste("imhof_sf <-", paste(deparse(imhof_sf), collapse = "\n")),
               "farebrother <- function(q, lambda, ...) list(Qq = imhof_sf(q, lambda))"),
             file.path(cqf_src, "R", "farebrother.R"))
  cqf_lib <- file.path(tempdir(), "lib")
  dir.create(cqf_lib, showWarnings = FALSE)
  suppressMessages(install.packages(cqf_src, repos = NULL, type = "source", lib = cqf_lib,
                                    quiet = TRUE))
  .libPaths(c(cqf_lib, .libPaths()))
}

genq_ci <- function(yi, vi, X, a, level) {
  k <- length(yi); p <- ncol(X)
  A <- diag(a)
  P <- A - A %*% X %*% solve(t(X) %*% A %*% X) %*% t(X) %*% A
  Q <- c(t(yi) %*% P %*% yi)
  sf <- function(t) {
    S <- diag(sqrt(vi + t))
    lam <- eigen(S %*% P %*% S, symmetric = TRUE, only.values = TRUE)$values[seq_len(k - p)]
    imhof_sf(Q, lam)
  }
  alpha <- 1 - level
  if (sf(0) > 1 - alpha / 2) return(c(0, 0))
  hi <- 100; while (sf(hi) < 1 - alpha / 2) hi <- hi * 10
  ub <- uniroot(function(t) sf(t) - (1 - alpha / 2), c(0, hi), tol = 1e-12, maxiter = 10000)$root
  lb <- if (sf(0) > alpha / 2) 0 else
    uniroot(function(t) sf(t) - alpha / 2, c(0, ub), tol = 1e-12, maxiter = 10000)$root
  c(lb, ub)
}

ci_sets <- c("bcg_rr", "molloy2014_zcor")
rows <- list()
put_ci <- function(key, type, tau2, lb, ub, vt) {
  vals <- list(tau2 = tau2, tau2.lb = lb, tau2.ub = ub, I2.lb = 100 * lb / (vt + lb),
               I2.ub = 100 * ub / (vt + ub), H2.lb = lb / vt + 1, H2.ub = ub / vt + 1)
  for (q in names(vals))
    rows[[length(rows) + 1]] <<- data.frame(key, type = type, quantity = q, value = fmt(vals[[q]]))
}
for (dsn in ci_sets) for (mods in c("", "x")) for (level in c(0.95, 0.9)) {
  d <- sets[[dsn]]
  X <- if (mods == "x") cbind(1, d$x) else matrix(1, nrow(d), 1)
  for (method in c("ML", "REML")) {
    r <- rma.uni(d$yi, d$vi, mods = X, intercept = FALSE, method = method, level = 100 * level,
                 control = ctrl)
    ci <- confint(r, type = "PL", control = list(tol = 1e-12))$random
    key <- data.frame(dataset = dsn, mods = mods, method = method, weights = "", level = level)
    put_ci(key, "PL", r$tau2, ci["tau^2", "ci.lb"], ci["tau^2", "ci.ub"], r$vt)
  }
  wts <- list(inv_vi = 1 / d$vi, equal = rep(1, nrow(d)), ni = diag_ni[[dsn]])
  for (wn in names(wts)) {
    r <- rma.uni(d$yi, d$vi, mods = X, intercept = FALSE, method = "GENQ", weights = wts[[wn]],
                 level = 100 * level, control = ctrl)
    key <- data.frame(dataset = dsn, mods = mods, method = "GENQ", weights = wn, level = level)
    b <- genq_ci(d$yi, d$vi, X, wts[[wn]], level)
    put_ci(key, "GENQ", r$tau2, b[1], b[2], r$vt)
    ci <- confint(r, type = "GENQ")$random
    put_ci(key, "GENQ_metafor", r$tau2, ci["tau^2", "ci.lb"], ci["tau^2", "ci.ub"], r$vt)
  }
}
write.csv(do.call(rbind, rows), "confint_types.csv", row.names = FALSE, quote = FALSE)
