# R references for the MetaResult diagnostics: leave1out, influence, cumul, regtest, ranktest,
# trimfill (metafor 3.8). Sourced at the end of make_reference.R (uses its `sets`, `fmt`, `ctrl`,
# `bcg`, `nor`, `mol`); writes, next to itself:
#   diagnostics_ni.csv   the total sample size n_i of each study (regtest predictors ni, ninv, ...)
#   diagnostics.csv      long format: dataset, mods, method, test, analysis, variant, study
#                        (0-based row of data.csv; empty for a model-level number), quantity, value
#   subgroups.csv, subgroups_fits.csv   subgroup analyses (see the end of this file)
diag_sets <- c("bcg_rr", "normand1999_smd", "molloy2014_zcor")
diag_ni <- list(bcg_rr = with(bcg, tpos + tneg + cpos + cneg), normand1999_smd = with(nor, n1i + n2i),
                molloy2014_zcor = mol$ni)
write.csv(do.call(rbind, lapply(diag_sets, function(n)
  data.frame(dataset = n, row = seq_along(diag_ni[[n]]) - 1, ni = fmt(diag_ni[[n]])))),
  "diagnostics_ni.csv", row.names = FALSE, quote = FALSE)
# models: FE (z), DL and REML (z and Knapp-Hartung)
diag_models <- list(c("FE", "z"), c("DL", "z"), c("DL", "knha"), c("REML", "z"), c("REML", "knha"))

put <- function(key, analysis, variant, study, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(key, analysis = analysis, variant = variant,
                                          study = study, quantity = quantity, value = fmt(value))
}
per_study <- function(key, analysis, variant, lst, names) {
  for (q in names) put(key, analysis, variant, seq_along(lst[[q]]) - 1, q, as.numeric(lst[[q]]))
}
l1_names <- c("estimate", "se", "zval", "pval", "ci.lb", "ci.ub", "Q", "Qp", "tau2", "I2", "H2")
# datasets whose influence diagnostics are also computed with the moderator x
diag_mods_sets <- c("bcg_rr", "curtis1998_rom")

# Every diagnostic of one cell (dataset dsn, model mt = c(method, test), study sizes ni),
# appended to the global `rows` (also used by make_diagnostics_more.R).
diagnose <- function(dsn, mt, ni) {
  d <- sets[[dsn]]
  key <- data.frame(dataset = dsn, mods = "", method = mt[1], test = mt[2])
  res <- rma.uni(d$yi, d$vi, method = mt[1], test = mt[2], control = ctrl)
  # leave1out, cumul (given order, and by increasing vi)
  l1 <- leave1out(res)
  names(l1)[names(l1) == "tval"] <- "zval"
  per_study(key, "leave1out", "", l1, intersect(l1_names, names(l1)))
  for (ord in c("", "vi")) {
    cu <- if (ord == "") cumul(res) else cumul(res, order = d$vi)
    names(cu)[names(cu) == "tval"] <- "zval"; names(cu)[names(cu) == "pvals"] <- "pval"
    per_study(key, "cumul", ord, cu, intersect(l1_names, names(cu)))
  }
  # influence (also with a moderator for diag_mods_sets)
  for (mods in c(FALSE, TRUE)) {
    if (mods && !(dsn %in% diag_mods_sets)) next
    r <- if (mods) rma.uni(d$yi, d$vi, mods = ~ d$x, method = mt[1], test = mt[2], control = ctrl) else res
    inf <- influence(r)
    k2 <- key; k2$mods <- if (mods) "x" else ""
    per_study(k2, "influence", "", inf$inf,
              c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight"))
    put(k2, "influence", "", seq_along(inf$is.infl) - 1, "inf", as.numeric(inf$is.infl))
    for (j in seq_len(r$p)) put(k2, "influence", "", seq_along(inf$is.infl) - 1,
                                paste0("dfbs_", j), inf$dfbs[[j]])
  }
  # regtest
  for (model in c("rma", "lm")) for (pred in c("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")) {
    eg <- regtest(res, model = model, predictor = pred, ni = ni)
    vals <- list(zval = eg$zval, pval = eg$pval, ddf = eg$ddf,
                 est = if (is.null(eg$est)) NA else eg$est,
                 ci.lb = if (is.null(eg$ci.lb)) NA else eg$ci.lb,
                 ci.ub = if (is.null(eg$ci.ub)) NA else eg$ci.ub)
    for (q in names(vals)) put(key, "regtest", paste(model, pred, sep = "_"), "", q, vals[[q]])
  }
  # ranktest (exact, metafor's default; with tied vi cor.test warns that it cannot be exact and
  # uses the normal approximation: the warning is silenced)
  rt <- suppressWarnings(ranktest(res))
  put(key, "ranktest", "", "", "tau", rt$tau); put(key, "ranktest", "", "", "pval", rt$pval)
  # trimfill: refit with the model's test and tightened control (metafor's default refit uses
  # test = "z" and default control unless they are passed on)
  for (est in c("L0", "R0", "Q0")) for (side in c("auto", "left", "right")) {
    tf <- if (side == "auto") trimfill(res, estimator = est, test = mt[2], control = ctrl)
          else trimfill(res, estimator = est, side = side, test = mt[2], control = ctrl)
    v <- paste(est, side, sep = "_")
    vals <- list(k0 = tf$k0, se.k0 = tf$se.k0, right = as.numeric(tf$side == "right"),
                 p.k0 = if (is.null(tf$p.k0)) NA else tf$p.k0, estimate = tf$beta[1],
                 se = tf$se, zval = tf$zval, pval = tf$pval, ci.lb = tf$ci.lb, ci.ub = tf$ci.ub,
                 tau2 = tf$tau2, QE = tf$QE, I2 = tf$I2)
    for (q in names(vals)) put(key, "trimfill", v, "", q, vals[[q]])
    if (tf$k0 > 0) {
      filled <- which(tf$fill)
      put(key, "trimfill", v, seq_along(filled) - 1, "fill_yi", tf$yi[filled])
      put(key, "trimfill", v, seq_along(filled) - 1, "fill_vi", tf$vi[filled])
    }
  }
}

rows <- list()
for (dsn in diag_sets) for (mt in diag_models) diagnose(dsn, mt, diag_ni[[dsn]])
write.csv(do.call(rbind, rows), "diagnostics.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- subgroups
# subgroups.csv: the grouping of each dataset (bcg: allocation; normand1999: UK or not; molloy2014:
# design); subgroups_fits.csv: per subgroup rma.uni (a one-study subgroup is fitted as metafor does:
# tau2 = 0, z test), the fixed-effect test of subgroup differences on the subgroup estimates
# (RevMan's; rma(est, sei = se, method = "FE")$QE) and the omnibus QM of the meta-regression on
# the subgroup factor (common tau2).
grp <- list(bcg_rr = as.character(bcg$alloc),
            normand1999_smd = ifelse(grepl("^(Edinburgh|Orpington|Newcastle)", nor$source), "UK", "other"),
            molloy2014_zcor = as.character(mol$design))
write.csv(do.call(rbind, lapply(diag_sets, function(n)
  data.frame(dataset = n, row = seq_along(grp[[n]]) - 1, group = grp[[n]]))),
  "subgroups.csv", row.names = FALSE, quote = FALSE)
rows <- list()
for (dsn in diag_sets) for (mt in diag_models) {
  d <- sets[[dsn]]
  g <- factor(grp[[dsn]])
  key <- data.frame(dataset = dsn, method = mt[1], test = mt[2])
  ests <- ses <- numeric(0)
  for (lev in levels(g)) {
    r <- suppressWarnings(rma.uni(d$yi, d$vi, subset = g == lev, method = mt[1], test = mt[2],
                                  control = ctrl))
    vals <- list(k = r$k, estimate = r$beta[1], se = r$se, zval = r$zval, pval = r$pval,
                 ci.lb = r$ci.lb, ci.ub = r$ci.ub, tau2 = r$tau2, QE = r$QE, QEp = r$QEp,
                 I2 = r$I2, H2 = r$H2)
    for (q in names(vals)) rows[[length(rows) + 1]] <- data.frame(key, group = lev, quantity = q,
                                                                  value = fmt(vals[[q]]))
    ests <- c(ests, r$beta[1]); ses <- c(ses, r$se)
  }
  b <- rma.uni(ests, sei = ses, method = "FE")
  m <- suppressWarnings(rma.uni(d$yi, d$vi, mods = ~ g, method = mt[1], test = mt[2], control = ctrl))
  vals <- list(Q_between = b$QE, Q_between_df = b$k - 1, Q_between_p = b$QEp, QM = m$QM,
               QM_df1 = m$QMdf[1], QM_df2 = m$QMdf[2], QMp = m$QMp, tau2_common = m$tau2)
  for (q in names(vals)) rows[[length(rows) + 1]] <- data.frame(key, group = "", quantity = q,
                                                                value = fmt(vals[[q]]))
}
write.csv(do.call(rbind, rows), "subgroups_fits.csv", row.names = FALSE, quote = FALSE)
