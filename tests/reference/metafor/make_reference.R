# R references for imrstats.meta (effect sizes and random-effects pooling).
#
# Run from this folder:  Rscript --vanilla make_reference.R
# Writes, next to itself (numbers printed with 17 significant digits, NA = empty):
#   versions.csv       R, metafor and metadat versions used
#   data.csv           the yi/vi of every dataset pooled (so the tests need no R)
#   escalc.csv         escalc yi/vi for each measure x vtype (x zero-cell option)
#   fits.csv           every dataset x estimator x test: estimate, se, CI, tau2, se(tau2),
#                      I2, H2, Q, p(Q), QM, R2, prediction intervals (default, t, Riley) and
#                      Q-profile CIs of tau2, tau, I2, H2 -- with tightened control
#   fits_default.csv   a few fits with metafor's default control (what R users see)
#   bcg.csv, normand1999.csv, curtis1998.csv, molloy2014.csv, morris2008_*.csv, zero_cells.csv:
#                      the raw inputs of the escalc references (metadat 1.2.0 datasets)
#   oscillation.csv    ML/REML where plain Fisher scoring fails (metafor with stepadj = 0.5)
#   diagnostics*.csv, subgroups*.csv   leave1out, influence, cumul, regtest, ranktest, trimfill,
#                      subgroup analyses (make_diagnostics.R)
#   robust*.csv        PET-PEESE (lm) and cluster-robust CR2 / CR1 inference (make_robust.R)
#   selmodel.csv, permutest.csv, hackshaw1998.csv   step-function selection models and exact
#                      permutation tests (make_selmodel.R)
#   multilevel*.csv    three-level model rma.mv(random = ~ 1 | cluster/es) and its CR2 inference
#                      (make_multilevel.R)
suppressPackageStartupMessages(library(metafor))

fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)

writeLines(c("software,version",
             paste0("R,", paste(R.version$major, R.version$minor, sep = ".")),
             paste0("metafor,", as.character(packageVersion("metafor"))),
             paste0("metadat,", as.character(packageVersion("metadat")))),
           "versions.csv")

## ---------------------------------------------------------------- datasets
bcg <- dat.bcg
nor <- dat.normand1999
cur <- dat.curtis1998
mol <- dat.molloy2014
kon <- dat.konstantopoulos2011

# Morris (2008), Table 2 -- typed from the paper (dat.morris2008 is not in metadat 1.2.0);
# the same values as the metafor-project.org "morris2008" analysis example.
datT <- data.frame(m_pre = c(30.6, 23.5, 0.5, 53.4, 35.6), m_post = c(38.5, 26.8, 0.7, 75.9, 36.0),
                   sd_pre = c(15.0, 3.1, 0.1, 14.5, 4.7), sd_post = c(11.6, 4.1, 0.1, 4.4, 4.6),
                   ni = c(20, 50, 9, 10, 14), ri = c(.47, .64, .77, .89, .44))
datC <- data.frame(m_pre = c(23.1, 24.9, 0.6, 55.7, 34.8), m_post = c(19.7, 25.3, 0.6, 60.7, 33.4),
                   sd_pre = c(13.8, 4.1, 0.2, 17.3, 3.1), sd_post = c(14.8, 3.3, 0.2, 17.9, 6.9),
                   ni = c(20, 42, 9, 11, 14), ri = c(.47, .64, .77, .89, .44))
write.csv(data.frame(lapply(datT, fmt)), "morris2008_treatment.csv", row.names = FALSE, quote = FALSE)
write.csv(data.frame(lapply(datC, fmt)), "morris2008_control.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- escalc
esc <- list()
add_esc <- function(dataset, measure, vtype, option, e) {
  esc[[length(esc) + 1]] <<- data.frame(dataset = dataset, measure = measure, vtype = vtype,
                                        option = option, row = seq_along(e$yi) - 1,
                                        yi = fmt(e$yi), vi = fmt(e$vi))
}
for (m in c("RR", "OR", "RD")) {
  vts <- if (m == "RD") c("LS", "UB", "AV") else "LS"
  for (vt in vts)
    add_esc("bcg", m, vt, "", escalc(m, ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg, vtype = vt))
}
# zero cells: metafor's defaults (add = 1/2, to = "only0", drop00 = FALSE) and the other options
zero <- data.frame(ai = c(0, 3, 0, 5, 12), bi = c(10, 7, 12, 0, 30), ci = c(2, 0, 0, 4, 9),
                   di = c(8, 10, 15, 6, 33))
write.csv(zero, "zero_cells.csv", row.names = FALSE, quote = FALSE)
for (m in c("RR", "OR", "RD")) {
  add_esc("zero", m, "LS", "only0", escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = zero))
  add_esc("zero", m, "LS", "all", escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = zero, to = "all"))
  add_esc("zero", m, "LS", "if0all", escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = zero, to = "if0all"))
  add_esc("zero", m, "LS", "drop00", escalc(m, ai = ai, bi = bi, ci = ci, di = di, data = zero, drop00 = TRUE))
}
for (vt in c("LS", "LS2", "UB", "AV"))
  add_esc("normand1999", "SMD", vt, "", escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i,
                                                 sd2i = sd2i, n2i = n2i, data = nor, vtype = vt))
for (vt in c("LS", "HO"))
  add_esc("normand1999", "MD", vt, "", escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i,
                                                sd2i = sd2i, n2i = n2i, data = nor, vtype = vt))
for (ds in c("normand1999", "curtis1998")) {
  d <- if (ds == "curtis1998") cur else nor
  for (vt in c("LS", "HO", "AV", "AVHO"))
    add_esc(ds, "ROM", vt, "", escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i,
                                        sd2i = sd2i, n2i = n2i, data = d, vtype = vt))
}
for (vt in c("LS", "AV"))
  add_esc("molloy2014", "COR", vt, "", escalc("COR", ri = ri, ni = ni, data = mol, vtype = vt))
add_esc("molloy2014", "ZCOR", "LS", "", escalc("ZCOR", ri = ri, ni = ni, data = mol))
for (grp in c("treatment", "control")) {
  d <- if (grp == "treatment") datT else datC
  for (vt in c("LS", "LS2")) {
    add_esc(paste0("morris2008_", grp), "SMCR", vt, "",
            escalc("SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_pre, ni = ni, ri = ri, data = d, vtype = vt))
    add_esc(paste0("morris2008_", grp), "SMCC", vt, "",
            escalc("SMCC", m1i = m_post, m2i = m_pre, sd1i = sd_post, sd2i = sd_pre, ni = ni, ri = ri,
                   data = d, vtype = vt))
  }
}
write.csv(do.call(rbind, esc), "escalc.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- pooled datasets
e_bcg_rr <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
e_bcg_or <- escalc("OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
e_bcg_rd <- escalc("RD", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg)
e_nor_smd <- escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nor)
e_nor_md <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = nor)
e_cur_rom <- escalc("ROM", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i, data = cur)
e_mol <- escalc("ZCOR", ri = ri, ni = ni, data = mol)
eT <- escalc("SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_pre, ni = ni, ri = ri, data = datT)
eC <- escalc("SMCR", m1i = m_post, m2i = m_pre, sd1i = sd_pre, ni = ni, ri = ri, data = datC)
sets <- list(
  bcg_rr = data.frame(yi = e_bcg_rr$yi, vi = e_bcg_rr$vi, x = bcg$ablat),
  bcg_or = data.frame(yi = e_bcg_or$yi, vi = e_bcg_or$vi, x = bcg$ablat),
  bcg_rd = data.frame(yi = e_bcg_rd$yi, vi = e_bcg_rd$vi, x = bcg$ablat),
  normand1999_smd = data.frame(yi = e_nor_smd$yi, vi = e_nor_smd$vi, x = NA),
  normand1999_md = data.frame(yi = e_nor_md$yi, vi = e_nor_md$vi, x = NA),
  curtis1998_rom = data.frame(yi = e_cur_rom$yi, vi = e_cur_rom$vi, x = cur$time),
  molloy2014_zcor = data.frame(yi = e_mol$yi, vi = e_mol$vi, x = mol$meanage),
  konstantopoulos2011 = data.frame(yi = kon$yi, vi = kon$vi, x = kon$year),
  morris2008 = data.frame(yi = eT$yi - eC$yi, vi = eT$vi + eC$vi, x = NA)
)
dd <- do.call(rbind, lapply(names(sets), function(n)
  data.frame(dataset = n, row = seq_len(nrow(sets[[n]])) - 1, yi = fmt(sets[[n]]$yi),
             vi = fmt(sets[[n]]$vi), x = fmt(sets[[n]]$x))))
write.csv(dd, "data.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- fits
methods <- c("FE", "EE", "DL", "HE", "HS", "HSk", "SJ", "ML", "REML", "EB", "PM", "PMM", "GENQ")
tests <- c("z", "t", "knha", "adhoc")
newx <- c(10, 30, 50)

one_fit <- function(d, method, test, mods, control) {
  args <- list(yi = d$yi, vi = d$vi, method = method, test = test, control = control)
  if (method == "GENQ") args$weights <- 1 / d$vi  # imrstats: pool(..., weights=1/vi)
  if (mods) args$mods <- ~ d$x
  res <- suppressWarnings(do.call(rma.uni, args))
  out <- list(estimate = res$beta[1], se = res$se[1], zval = res$zval[1], pval = res$pval[1],
              ci_lb = res$ci.lb[1], ci_ub = res$ci.ub[1], tau2 = res$tau2,
              se_tau2 = if (is.null(res$se.tau2)) NA else res$se.tau2,
              I2 = res$I2, H2 = res$H2, QE = res$QE, QEp = res$QEp, QM = res$QM, QMp = res$QMp,
              vt = res$vt, s2w = res$s2w, ddf = if (is.na(res$ddf[1])) NA else res$ddf[1])
  if (mods) {
    out$slope <- res$beta[2]; out$slope_se <- res$se[2]; out$slope_pval <- res$pval[2]
    out$slope_ci_lb <- res$ci.lb[2]; out$slope_ci_ub <- res$ci.ub[2]
    out$R2 <- if (is.null(res$R2)) NA else res$R2
    pr <- predict(res, newmods = newx)
    for (j in seq_along(newx)) {
      out[[paste0("pred_", j)]] <- pr$pred[j]; out[[paste0("pred_se_", j)]] <- pr$se[j]
      out[[paste0("pred_ci_lb_", j)]] <- pr$ci.lb[j]; out[[paste0("pred_ci_ub_", j)]] <- pr$ci.ub[j]
      out[[paste0("pred_pi_lb_", j)]] <- pr$pi.lb[j]; out[[paste0("pred_pi_ub_", j)]] <- pr$pi.ub[j]
    }
  } else {
    for (pt in c("default", "t", "riley")) {
      pr <- predict(res, pi.type = pt)
      out[[paste0("pi_lb_", pt)]] <- pr$pi.lb; out[[paste0("pi_ub_", pt)]] <- pr$pi.ub
    }
  }
  if (!is.element(method, c("FE", "EE"))) {
    cc <- list(tol = 1e-12, maxiter = 10000)
    ci <- suppressWarnings(confint(res, type = "QP", control = if (identical(control, list())) list() else cc))
    rr <- ci$random
    out$tau2_ci_lb <- rr["tau^2", "ci.lb"]; out$tau2_ci_ub <- rr["tau^2", "ci.ub"]
    out$tau_ci_lb <- rr["tau", "ci.lb"]; out$tau_ci_ub <- rr["tau", "ci.ub"]
    out$I2_ci_lb <- rr["I^2(%)", "ci.lb"]; out$I2_ci_ub <- rr["I^2(%)", "ci.ub"]
    out$H2_ci_lb <- rr["H^2", "ci.lb"]; out$H2_ci_ub <- rr["H^2", "ci.ub"]
  }
  out
}

fits <- list()
for (dsn in names(sets)) {
  d <- sets[[dsn]]
  for (mods in c(FALSE, TRUE)) {
    if (mods && all(is.na(d$x))) next
    for (method in methods) for (test in tests) {
      out <- one_fit(d, method, test, mods, ctrl)
      fits[[length(fits) + 1]] <- data.frame(dataset = dsn, mods = if (mods) "x" else "",
                                              method = method, test = test, quantity = names(out),
                                              value = fmt(unlist(out)))
    }
  }
}
write.csv(do.call(rbind, fits), "fits.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- default control (what R users see)
fits <- list()
for (dsn in c("bcg_rr", "normand1999_smd", "konstantopoulos2011")) for (method in c("REML", "ML", "EB", "PM", "DL")) {
  out <- one_fit(sets[[dsn]], method, "z", FALSE, list())
  fits[[length(fits) + 1]] <- data.frame(dataset = dsn, mods = "", method = method, test = "z",
                                          quantity = names(out), value = fmt(unlist(out)))
}
write.csv(do.call(rbind, fits), "fits_default.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- raw inputs of the escalc references
write.csv(data.frame(lapply(bcg[, c("tpos", "tneg", "cpos", "cneg", "ablat", "year")], fmt)), "bcg.csv",
          row.names = FALSE, quote = FALSE)
for (nm in c("normand1999", "curtis1998")) {
  d <- if (nm == "curtis1998") cur else nor
  write.csv(data.frame(lapply(d[, c("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")], fmt)),
            paste0(nm, ".csv"), row.names = FALSE, quote = FALSE)
}
write.csv(data.frame(lapply(mol[, c("ri", "ni")], fmt)), "molloy2014.csv", row.names = FALSE, quote = FALSE)

## ---------------------------------------------------------------- Fisher scoring that oscillates
# metafor's plain Fisher scoring does not converge on these data (ML and REML stop with an error);
# with stepadj = 0.5 it does. imrstats falls back to a safeguarded iteration and must agree.
yo <- c(rep(0, 12), 2, rep(0, 7)); vo <- c(rep(1, 12), 0.25, rep(1, 7))
osc <- do.call(rbind, lapply(c("ML", "REML"), function(m) {
  plain <- tryCatch({ rma(yo, vo, method = m, control = ctrl); "converged" },
                    error = function(e) conditionMessage(e))
  r <- rma(yo, vo, method = m, control = c(ctrl, list(stepadj = 0.5)))
  data.frame(method = m, plain = plain, tau2 = fmt(r$tau2), estimate = fmt(r$beta[1]), se = fmt(r$se))
}))
write.csv(osc, "oscillation.csv", row.names = FALSE)

## ---------------------------------------------------------------- diagnostics
# leave1out, influence, cumul, regtest, ranktest, trimfill: see make_diagnostics.R
source("make_diagnostics.R")

## ---------------------------------------------------------------- PET-PEESE and cluster-robust inference
# lm() PET/PEESE, clubSandwich CR2 coef_test and metafor robust(): see make_robust.R
source("make_robust.R")

## ---------------------------------------------------------------- three-level model (rma.mv)
# rma.mv(random = ~ 1 | cluster/es), confint, clubSandwich CR2 and robust(): see make_multilevel.R
source("make_multilevel.R")

## ---------------------------------------------------------------- selection model and permutation test
# selmodel(type = "stepfun") and permutest(exact = TRUE): see make_selmodel.R
source("make_selmodel.R")

## ---------------------------------------------------------------- SMCRH, pre-post r sensitivity, CI types, more diagnostics
# escalc("SMCRH") and rma on imputed pre-post r: make_smcrh.R; confint(type = "PL" / "GENQ"):
# make_confint.R; diagnostics on curtis1998 and with PM: make_diagnostics_more.R
source("make_smcrh.R")
source("make_confint.R")
source("make_diagnostics_more.R")
