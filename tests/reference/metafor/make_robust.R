# R references for MetaResult.pet_peese() and MetaResult.robust(). Sourced at the end of
# make_reference.R (uses its `sets`, `fmt`, `ctrl`, `kon`, `cur`); writes, next to itself:
#   robust_clusters.csv  the cluster of each study (konstantopoulos2011: district; curtis1998_rom:
#                        paper), rows as in data.csv
#   robust.csv           long format: dataset, method, mods, analysis, term (0-based coefficient),
#                        quantity, value
# PET-PEESE: lm(yi ~ sqrt(vi), weights = 1/vi) and lm(yi ~ vi, weights = 1/vi) (stats 4.2).
# robust: clubSandwich::coef_test(fit, vcov = "CR2", cluster = ..., test = "Satterthwaite") with
# conf_int(); metafor::robust(fit, cluster, adjust = TRUE) (CR1).
suppressPackageStartupMessages(library(clubSandwich))
rob_rows <- list()
rput <- function(dataset, method, mods, analysis, quantity, value) {
  rob_rows[[length(rob_rows) + 1]] <<- data.frame(dataset = dataset, method = method, mods = mods,
    analysis = analysis, term = seq_along(value) - 1, quantity = quantity, value = fmt(unname(value)))
}
for (dsn in c("bcg_rr", "normand1999_smd")) {
  d <- sets[[dsn]]
  for (an in c("pet", "peese")) {
    fit <- if (an == "pet") lm(yi ~ sqrt(vi), weights = 1 / vi, data = d) else
                            lm(yi ~ vi, weights = 1 / vi, data = d)
    cf <- summary(fit)$coefficients
    ci <- confint(fit, level = 0.95)
    vals <- list(estimate = cf[, 1], se = cf[, 2], tval = cf[, 3], pval = cf[, 4],
                 df = rep(fit$df.residual, 2), ci.lb = ci[, 1], ci.ub = ci[, 2])
    for (q in names(vals)) rput(dsn, "lm", "", an, q, vals[[q]])
  }
}
clus <- list(konstantopoulos2011 = as.character(kon$district), curtis1998_rom = as.character(cur$paper))
write.csv(do.call(rbind, lapply(names(clus), function(n)
  data.frame(dataset = n, row = seq_along(clus[[n]]) - 1, cluster = clus[[n]]))),
  "robust_clusters.csv", row.names = FALSE, quote = FALSE)
for (dsn in names(clus)) for (method in c("REML", "FE")) for (mods in c("", "x")) {
  d <- sets[[dsn]]
  cl <- clus[[dsn]]
  fit <- if (mods == "") rma.uni(d$yi, d$vi, method = method, control = ctrl) else
                         rma.uni(d$yi, d$vi, mods = ~ x, data = d, method = method, control = ctrl)
  ct <- coef_test(fit, vcov = "CR2", cluster = cl, test = "Satterthwaite")
  ci <- conf_int(fit, vcov = "CR2", cluster = cl, level = 0.95)
  vals <- list(estimate = ct$beta, se = ct$SE, tval = ct$beta / ct$SE, df = ct$df_Satt,
               pval = ct$p_Satt, ci.lb = ci$CI_L, ci.ub = ci$CI_U)
  for (q in names(vals)) rput(dsn, method, mods, "CR2", q, vals[[q]])
  rb <- robust(fit, cluster = cl, adjust = TRUE)
  ddf <- if (!is.null(rb$ddf)) rb$ddf else rb$dfs
  vals <- list(estimate = rb$beta[, 1], se = rb$se, tval = rb$zval, df = rep(ddf, length(rb$se)),
               pval = rb$pval, ci.lb = rb$ci.lb, ci.ub = rb$ci.ub)
  for (q in names(vals)) rput(dsn, method, mods, "CR1", q, vals[[q]])
}
write.csv(do.call(rbind, rob_rows), "robust.csv", row.names = FALSE, quote = FALSE)
