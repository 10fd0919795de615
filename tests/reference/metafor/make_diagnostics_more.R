# More R references for the MetaResult diagnostics (metafor 3.8): the grid of make_diagnostics.R
# extended to dat.curtis1998 (ROM) and to the Paule-Mandel estimator. Sourced at the end of
# make_reference.R (uses its `sets`, `fmt`, `ctrl`, `cur`, `diag_ni`, `l1_names`); writes, next to
# itself:
#   diagnostics_more_ni.csv  n_i of curtis1998 (n1i + n2i; the others are in diagnostics_ni.csv)
#   diagnostics_more.csv     the format of diagnostics.csv, for the cells that diagnostics.csv
#                            does not hold: curtis1998_rom x {FE z; DL, REML, PM x z, knha} and
#                            bcg_rr, normand1999_smd, molloy2014_zcor x PM x {z, knha}
#                            (influence also with the moderator for bcg_rr and curtis1998_rom)
stopifnot(exists("fmt"), exists("sets"), exists("diag_ni"), exists("l1_names"))
more_ni <- c(diag_ni, list(curtis1998_rom = with(cur, n1i + n2i)))
write.csv(data.frame(dataset = "curtis1998_rom", row = seq_along(more_ni$curtis1998_rom) - 1,
                     ni = fmt(more_ni$curtis1998_rom)),
          "diagnostics_more_ni.csv", row.names = FALSE, quote = FALSE)
all_models <- list(c("FE", "z"), c("DL", "z"), c("DL", "knha"), c("REML", "z"), c("REML", "knha"),
                   c("PM", "z"), c("PM", "knha"))
more_cells <- list()
for (dsn in c("bcg_rr", "normand1999_smd", "curtis1998_rom", "molloy2014_zcor"))
  for (mt in all_models)
    if (dsn == "curtis1998_rom" || mt[1] == "PM") more_cells[[length(more_cells) + 1]] <- c(dsn, mt)

rows <- list()
put <- function(key, analysis, variant, study, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(key, analysis = analysis, variant = variant,
                                          study = study, quantity = quantity, value = fmt(value))
}
per_study <- function(key, analysis, variant, lst, names) {
  for (q in names) put(key, analysis, variant, seq_along(lst[[q]]) - 1, q, as.numeric(lst[[q]]))
}
for (cell in more_cells) {
  dsn <- cell[1]; mt <- cell[2:3]
  d <- sets[[dsn]]
  ni <- more_ni[[dsn]]
  key <- data.frame(dataset = dsn, mods = "", method = mt[1], test = mt[2])
  res <- rma.uni(d$yi, d$vi, method = mt[1], test = mt[2], control = ctrl)
  l1 <- leave1out(res)
  names(l1)[names(l1) == "tval"] <- "zval"
  per_study(key, "leave1out", "", l1, intersect(l1_names, names(l1)))
  for (ord in c("", "vi")) {
    cu <- if (ord == "") cumul(res) else cumul(res, order = d$vi)
    names(cu)[names(cu) == "tval"] <- "zval"; names(cu)[names(cu) == "pvals"] <- "pval"
    per_study(key, "cumul", ord, cu, intersect(l1_names, names(cu)))
  }
  for (mods in c(FALSE, TRUE)) {
    if (mods && !(dsn %in% c("bcg_rr", "curtis1998_rom"))) next
    r <- if (mods) rma.uni(d$yi, d$vi, mods = ~ d$x, method = mt[1], test = mt[2], control = ctrl) else res
    inf <- influence(r)
    k2 <- key; k2$mods <- if (mods) "x" else ""
    per_study(k2, "influence", "", inf$inf,
              c("rstudent", "dffits", "cook.d", "cov.r", "tau2.del", "QE.del", "hat", "weight"))
    put(k2, "influence", "", seq_along(inf$is.infl) - 1, "inf", as.numeric(inf$is.infl))
    for (j in seq_len(r$p)) put(k2, "influence", "", seq_along(inf$is.infl) - 1,
                                paste0("dfbs_", j), inf$dfbs[[j]])
  }
  for (model in c("rma", "lm")) for (pred in c("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")) {
    eg <- regtest(res, model = model, predictor = pred, ni = ni)
    vals <- list(zval = eg$zval, pval = eg$pval, ddf = eg$ddf,
                 est = if (is.null(eg$est)) NA else eg$est,
                 ci.lb = if (is.null(eg$ci.lb)) NA else eg$ci.lb,
                 ci.ub = if (is.null(eg$ci.ub)) NA else eg$ci.ub)
    for (q in names(vals)) put(key, "regtest", paste(model, pred, sep = "_"), "", q, vals[[q]])
  }
  rt <- suppressWarnings(ranktest(res))
  put(key, "ranktest", "", "", "tau", rt$tau); put(key, "ranktest", "", "", "pval", rt$pval)
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
write.csv(do.call(rbind, rows), "diagnostics_more.csv", row.names = FALSE, quote = FALSE)
