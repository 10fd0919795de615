# R references for the three-level model imrstats.meta.pool(..., cluster=...) (metafor rma.mv with
# random = ~ 1 | cluster/es_id) and its CR2 inference. Sourced at the end of make_reference.R (uses
# its `fmt`); also runs alone (Rscript --vanilla make_multilevel.R). Writes, next to itself:
#   multilevel_data.csv     dataset, row, cluster, yi, vi, x (moderator) of every dataset fitted
#   multilevel.csv          long format: dataset, method, mods, test, analysis, term, quantity, value
#   multilevel_default.csv  the same fits (without moderators) with metafor's default control
#   multilevel_versions.csv R, metafor, metadat and clubSandwich versions used
# Datasets (metadat): dat.konstantopoulos2011 (district/school, moderator year) and
# dat.assink2016 (study/esid, moderator year); "boundary" (10 made-up effects in 5 clusters whose
# between-cluster variance is estimated at 0).
# Each fit is run with three tight optimizers (nlminb rel.tol = 1e-10; optim BFGS reltol = 1e-15;
# bobyqa rhoend = 1e-12) and the one with the highest log-likelihood is kept (column quantity
# "optimizer" records it): nlminb with rel.tol = 1e-12 stops with "false convergence" on assink2016.
# analysis = "fit": coefficients (estimate, se, zval, pval, ci.lb, ci.ub, df), sigma2 and s.nlevels
#   (term 0 = between clusters, 1 = within), QE, QEp, QEdf, QM, QMp, QMdf1, QMdf2, logLik,
#   deviance, AIC, BIC, AICc, multilevel I2 (metafor FAQ: total and per level), weights (term =
#   row) and predict()
#   (without moderators: the pooled effect; with: at `newx`);
# analysis = "profile" (z fits only; the test does not enter): confint(fit, sigma2 = 1 and 2)
#   with uniroot tol 1e-10;
# analysis = "CR2": clubSandwich::coef_test(fit, vcov = "CR2", cluster) + conf_int (z fits only);
# analysis = "robust": metafor::robust(fit, cluster, clubSandwich = TRUE) (z fits only);
# analysis = "CR2_coarse" (konstantopoulos2011, z fits): coef_test with robust clusters
#   district %/% 50 (4 clusters, each holding whole districts).
# Everything runs in local() so that the scripts sourced after this one see no new globals.
suppressPackageStartupMessages({library(metafor); library(clubSandwich)})
local({
if (!exists("fmt")) fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))

writeLines(c("software,version",
             paste0("R,", paste(R.version$major, R.version$minor, sep = ".")),
             paste0("metafor,", as.character(packageVersion("metafor"))),
             paste0("metadat,", as.character(packageVersion("metadat"))),
             paste0("clubSandwich,", as.character(packageVersion("clubSandwich")))),
           "multilevel_versions.csv")

kon <- dat.konstantopoulos2011
ass <- dat.assink2016
ml_sets <- list(
  konstantopoulos2011 = data.frame(cluster = kon$district, es = kon$school, yi = kon$yi,
                                   vi = kon$vi, x = kon$year),
  assink2016 = data.frame(cluster = ass$study, es = ass$esid, yi = ass$yi, vi = ass$vi,
                          x = ass$year),
  # made up: the two effects of each cluster straddle a common mean, so the between-cluster
  # variance is estimated on its boundary 0 (metafor: ~1e-11 on its log scale)
  boundary = data.frame(cluster = rep(1:5, each = 2), es = rep(1:2, 5),
                        yi = c(0.5, -0.1, 0.7, -0.3, 0.45, -0.05, 0.9, -0.5, 0.3, 0.1),
                        vi = c(0.02, 0.03, 0.02, 0.025, 0.02, 0.03, 0.04, 0.02, 0.03, 0.02),
                        x = c(1, 3, 2, 5, 4, 4, 6, 2, 3, 7)))
ml_newx <- list(konstantopoulos2011 = c(1980, 1990, 2000), assink2016 = c(-5, 0, 5),
                boundary = c(2, 4, 6))
write.csv(do.call(rbind, lapply(names(ml_sets), function(n) with(ml_sets[[n]],
  data.frame(dataset = n, row = seq_along(yi) - 1, cluster = cluster, yi = fmt(yi), vi = fmt(vi),
             x = fmt(x))))), "multilevel_data.csv", row.names = FALSE, quote = FALSE)

ml_ctrls <- list(nlminb = list(rel.tol = 1e-10, iter.max = 1000, eval.max = 5000),
                 BFGS = list(optimizer = "optim", optmethod = "BFGS", reltol = 1e-15, maxit = 10000),
                 bobyqa = list(optimizer = "bobyqa", rhoend = 1e-12, maxfun = 1e5))
ml_fit <- function(d, method, mods, test, control) {
  if (mods == "") rma.mv(yi, vi, random = ~ 1 | cluster/es, data = d, method = method, test = test,
                         control = control)
  else rma.mv(yi, vi, mods = ~ x, random = ~ 1 | cluster/es, data = d, method = method,
              test = test, control = control)
}
ml_best <- function(d, method, mods, test) {
  best <- NULL
  for (nm in names(ml_ctrls)) {
    f <- tryCatch(ml_fit(d, method, mods, test, ml_ctrls[[nm]]), error = function(e) NULL)
    if (!is.null(f) && (is.null(best) || logLik(f) > logLik(best$fit))) best <- list(fit = f, opt = nm)
  }
  best
}
ml_I2 <- function(f) {  # metafor FAQ, "I^2 for multilevel and multivariate models"
  W <- diag(1 / f$vi)
  X <- model.matrix(f)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  vt <- (f$k - f$p) / sum(diag(P))
  100 * c(sum(f$sigma2), f$sigma2) / (sum(f$sigma2) + vt)
}
ml_rows <- list()
mput <- function(key, analysis, quantity, value) {
  ml_rows[[length(ml_rows) + 1]] <<- data.frame(key, analysis = analysis,
    term = seq_along(value) - 1, quantity = quantity, value = fmt(unname(as.numeric(value))))
}
for (dsn in names(ml_sets)) for (method in c("REML", "ML")) for (mods in c("", "x"))
  for (test in c("z", "t")) {
    d <- ml_sets[[dsn]]
    b <- ml_best(d, method, mods, test)
    f <- b$fit
    key <- data.frame(dataset = dsn, method = method, mods = mods, test = test)
    mput(key, "fit", "optimizer", match(b$opt, names(ml_ctrls)))
    vals <- list(estimate = f$beta[, 1], se = f$se, zval = f$zval, pval = f$pval, ci.lb = f$ci.lb,
                 ci.ub = f$ci.ub, df = rep(if (test == "t") f$ddf[1] else NA, f$p),
                 sigma2 = f$sigma2, s.nlevels = f$s.nlevels, QE = f$QE, QEp = f$QEp,
                 QEdf = f$k - f$p, logLik = logLik(f), deviance = deviance(f), AIC = AIC(f),
                 BIC = BIC(f), AICc = fitstats(f)[5, 1], I2 = ml_I2(f),
                 weight = weights(f))  # type = "diagonal": 100 diag(W) / sum(diag(W))
    if (mods != "") vals <- c(vals, list(QM = f$QM, QMp = f$QMp, QMdf1 = f$QMdf[1],
                                         QMdf2 = f$QMdf[2]))
    pr <- if (mods == "") predict(f) else predict(f, newmods = ml_newx[[dsn]])
    vals <- c(vals, list(pred = pr$pred, pred.se = pr$se, pred.ci.lb = pr$ci.lb,
                         pred.ci.ub = pr$ci.ub, pred.pi.lb = pr$pi.lb, pred.pi.ub = pr$pi.ub))
    for (q in names(vals)) mput(key, "fit", q, vals[[q]])
    if (test == "z") {
      for (s in 1:2) {
        ci <- confint(f, sigma2 = s, control = list(tol = 1e-10))$random
        mput(key, "profile", paste0("sigma2.", s), ci[1, ])
      }
      ct <- coef_test(f, vcov = "CR2", cluster = d$cluster, test = "Satterthwaite")
      cc <- conf_int(f, vcov = "CR2", cluster = d$cluster, level = 0.95)
      vals <- list(estimate = ct$beta, se = ct$SE, tval = ct$beta / ct$SE, df = ct$df_Satt,
                   pval = ct$p_Satt, ci.lb = cc$CI_L, ci.ub = cc$CI_U)
      for (q in names(vals)) mput(key, "CR2", q, vals[[q]])
      rb <- robust(f, cluster = d$cluster, clubSandwich = TRUE)
      vals <- list(estimate = rb$beta[, 1], se = rb$se, tval = rb$zval, df = rb$ddf,
                   pval = rb$pval, ci.lb = rb$ci.lb, ci.ub = rb$ci.ub)
      for (q in names(vals)) mput(key, "robust", q, vals[[q]])
      if (dsn == "konstantopoulos2011") {  # robust clusters coarser than the model's
        coarse <- d$cluster %/% 50
        ct <- coef_test(f, vcov = "CR2", cluster = coarse, test = "Satterthwaite")
        vals <- list(se = ct$SE, df = ct$df_Satt, pval = ct$p_Satt)
        for (q in names(vals)) mput(key, "CR2_coarse", q, vals[[q]])
      }
    }
  }
write.csv(do.call(rbind, ml_rows), "multilevel.csv", row.names = FALSE, quote = FALSE)

ml_def <- list()
for (dsn in names(ml_sets)) for (method in c("REML", "ML")) {
  f <- ml_fit(ml_sets[[dsn]], method, "", "z", list())
  ml_def[[length(ml_def) + 1]] <- data.frame(dataset = dsn, method = method,
    sigma2.1 = fmt(f$sigma2[1]), sigma2.2 = fmt(f$sigma2[2]), estimate = fmt(f$beta[1]),
    se = fmt(f$se), logLik = fmt(as.numeric(logLik(f))))
}
write.csv(do.call(rbind, ml_def), "multilevel_default.csv", row.names = FALSE, quote = FALSE)
})
