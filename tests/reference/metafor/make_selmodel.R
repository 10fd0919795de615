# R references for MetaResult.selection_model() and MetaResult.permutation_test(). Sourced at the
# end of make_reference.R (uses its `sets`, `fmt`, `ctrl`); writes, next to itself:
#   hackshaw1998.csv  yi, vi of metadat's dat.hackshaw1998 (log odds ratios, k = 37)
#   selmodel.csv      long format: case, dataset, method, mods, alternative, steps, quantity,
#                     index (0-based), value
#   permutest.csv     long format: case, dataset, rows, method, test, mods, quantity, index, value
# selmodel(res, type = "stepfun", steps = ..., alternative = ...) with optim's BFGS tightened:
# reltol = 1e-15 (default 1e-8) and finite-difference steps ndeps = 1e-6 (default 1e-3, whose
# gradient error leaves BFGS ~1e-5 from the optimum); Hessian by numDeriv (metafor's default).
# permutest(res, exact = TRUE): deterministic, every sign flip (no moderators) or every distinct
# permutation of the moderator rows.
hack <- data.frame(yi = dat.hackshaw1998$yi, vi = dat.hackshaw1998$vi)
write.csv(data.frame(yi = fmt(hack$yi), vi = fmt(hack$vi)), "hackshaw1998.csv", row.names = FALSE,
          quote = FALSE)
sel_sets <- list(hackshaw1998 = hack, bcg_rr = sets$bcg_rr, normand1999_smd = sets$normand1999_smd)
sel_cases <- list(
  list("hackshaw1998", "REML", "", "greater", c(0.025, 1)),
  list("hackshaw1998", "REML", "", "greater", c(0.05, 0.10, 0.5, 1)),
  list("hackshaw1998", "FE", "", "greater", c(0.025, 1)),
  list("hackshaw1998", "FE", "", "greater", c(0.05, 0.10, 0.5, 1)),
  list("hackshaw1998", "REML", "", "two.sided", c(0.05, 0.10, 0.5, 1)),
  list("hackshaw1998", "DL", "", "greater", c(0.05, 0.10, 0.5, 1)),
  list("bcg_rr", "REML", "", "less", c(0.025, 1)),
  list("bcg_rr", "REML", "", "less", c(0.05, 0.10, 0.5, 1)),
  list("bcg_rr", "REML", "x", "less", c(0.025, 1)),
  list("bcg_rr", "REML", "x", "two.sided", c(0.05, 1)),
  list("bcg_rr", "REML", "", "greater", c(0.025, 1)),  # no p <= 0.025: delta_2 runs to 100
  list("bcg_rr", "REML", "", "greater", c(0.05, 0.10, 0.5, 1)),  # no 0.05 < p <= 0.1: stops
  list("normand1999_smd", "REML", "", "less", c(0.025, 1)),
  list("normand1999_smd", "FE", "", "less", c(0.05, 0.10, 0.5, 1))
)
sel_rows <- list()
sput <- function(case, quantity, value) {
  value <- unname(value)
  sel_rows[[length(sel_rows) + 1]] <<- data.frame(case = case$id, dataset = case$ds,
    method = case$method, mods = case$mods, alternative = case$alt, steps = case$steps,
    quantity = quantity, index = seq_along(value) - 1, value = fmt(value))
}
for (i in seq_along(sel_cases)) {
  cs <- sel_cases[[i]]
  case <- list(id = i - 1, ds = cs[[1]], method = cs[[2]], mods = cs[[3]], alt = cs[[4]],
               steps = paste(cs[[5]], collapse = ";"))
  d <- sel_sets[[case$ds]]
  fit <- if (case$mods == "") rma.uni(d$yi, d$vi, method = case$method, control = ctrl) else
    rma.uni(d$yi, d$vi, mods = ~ x, data = d, method = case$method, control = ctrl)
  npar <- ncol(fit$X) + 1 + length(cs[[5]])  # optim's parameters: beta, tau2, every delta
  sel_ctrl <- list(reltol = 1e-15, maxit = 10000, ndeps = rep(1e-6, npar))
  warned <- FALSE
  sm <- tryCatch(withCallingHandlers(
    selmodel(fit, type = "stepfun", steps = cs[[5]], alternative = case$alt, control = sel_ctrl),
    warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") }),
    error = function(e) conditionMessage(e))
  if (is.character(sm)) {
    sput(case, "error", 1)
    next
  }
  vals <- list(estimate = sm$beta[, 1], se = sm$se, zval = sm$zval, pval = sm$pval,
               ci.lb = sm$ci.lb, ci.ub = sm$ci.ub, tau2 = sm$tau2, se.tau2 = sm$se.tau2,
               delta = sm$delta, se.delta = sm$se.delta, zval.delta = sm$zval.delta,
               pval.delta = sm$pval.delta, ci.lb.delta = sm$ci.lb.delta,
               ci.ub.delta = sm$ci.ub.delta, k = sm$ptable$k, ll = sm$ll, ll0 = sm$ll0,
               LRT = sm$LRT, LRTdf = sm$LRTdf, LRTp = sm$LRTp, LRT.tau2 = sm$LRT.tau2,
               LRTp.tau2 = sm$LRTp.tau2, QM = sm$QM, QMp = sm$QMp,
               AIC = sm$fit.stats["AIC", "ML"], BIC = sm$fit.stats["BIC", "ML"],
               warning = as.numeric(warned), error = 0)
  for (q in names(vals)) sput(case, q, vals[[q]])
}
write.csv(do.call(rbind, sel_rows), "selmodel.csv", row.names = FALSE, quote = FALSE)

perm_cases <- list(
  list("normand1999_smd", 9, "REML", "z", ""),
  list("morris2008", 5, "DL", "t", ""),
  list("bcg_rr", 10, "REML", "knha", ""),
  list("bcg_rr", 7, "REML", "z", "x"),
  list("bcg_rr", 7, "FE", "z", "x"),
  list("bcg_rr", 7, "REML", "knha", "x")
)
perm_rows <- list()
for (i in seq_along(perm_cases)) {
  cs <- perm_cases[[i]]
  d <- sets[[cs[[1]]]][seq_len(cs[[2]]), ]
  fit <- if (cs[[5]] == "") rma.uni(d$yi, d$vi, method = cs[[3]], test = cs[[4]], control = ctrl) else
    rma.uni(d$yi, d$vi, mods = ~ x, data = d, method = cs[[3]], test = cs[[4]], control = ctrl)
  pt <- permutest(fit, exact = TRUE, progbar = FALSE)
  vals <- list(statistic = pt$zval, pval = pt$pval, QM = pt$QM, QMp = pt$QMp,
               n_permutations = NROW(pt$zval.perm))
  for (q in names(vals)) {
    v <- unname(vals[[q]])
    perm_rows[[length(perm_rows) + 1]] <- data.frame(case = i - 1, dataset = cs[[1]],
      rows = cs[[2]], method = cs[[3]], test = cs[[4]], mods = cs[[5]], quantity = q,
      index = seq_along(v) - 1, value = fmt(v))
  }
}
write.csv(do.call(rbind, perm_rows), "permutest.csv", row.names = FALSE, quote = FALSE)
