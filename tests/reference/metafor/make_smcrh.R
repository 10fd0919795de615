# R references for escalc(measure = "SMCRH") and the pre-post correlation sensitivity analysis
# (imrstats.meta.effect_sizes / prepost_r_sensitivity; metafor 3.8). Sourced at the end of
# make_reference.R (uses its `fmt`, `ctrl`, `datT`, `datC`); also runs alone. Writes, next to itself:
#   smcrh.csv              escalc SMCRH, SMCR (LS, LS2) and SMCC (LS) yi / vi of the Morris (2008)
#                          treatment and control tables and of the same tables with sd_post set to
#                          sd_pre (where SMCRH and SMCR differ only in their variance formulas)
#   prepost_r.csv          the same tables with ri missing in rows 2 and 4 (1-based), the missing
#                          ri imputed as 0.3, 0.5, 0.7 (or every ri replaced: `everywhere`), escalc
#                          SMCR / SMCC / SMCRH and rma.uni (REML, DL; z test) on each
if (!exists("fmt")) {
  suppressPackageStartupMessages(library(metafor))
  fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
  ctrl <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
  datT <- read.csv("morris2008_treatment.csv"); datC <- read.csv("morris2008_control.csv")
}
smc_tables <- list(treatment = datT, control = datC,
                   treatment_equal_sd = transform(datT, sd_post = sd_pre),
                   control_equal_sd = transform(datC, sd_post = sd_pre))
smc_cases <- list(c("SMCRH", "LS"), c("SMCR", "LS"), c("SMCR", "LS2"), c("SMCC", "LS"))
rows <- list()
for (tn in names(smc_tables)) for (mv in smc_cases) {
  d <- smc_tables[[tn]]
  e <- escalc(mv[1], m1i = m_post, m2i = m_pre, sd1i = sd_pre, sd2i = sd_post, ni = ni, ri = ri,
              vtype = mv[2], data = d)
  rows[[length(rows) + 1]] <- data.frame(table = tn, measure = mv[1], vtype = mv[2],
                                         row = seq_len(nrow(d)) - 1, yi = fmt(e$yi), vi = fmt(e$vi))
}
write.csv(do.call(rbind, rows), "smcrh.csv", row.names = FALSE, quote = FALSE)

rows <- list()
for (tn in c("treatment", "control")) for (m in c("SMCR", "SMCC", "SMCRH"))
  for (r in c(0.3, 0.5, 0.7)) for (everywhere in c(FALSE, TRUE)) for (method in c("REML", "DL")) {
  d <- smc_tables[[tn]]
  d$ri[c(2, 4)] <- NA
  d$ri <- if (everywhere) rep(r, nrow(d)) else ifelse(is.na(d$ri), r, d$ri)
  e <- escalc(m, m1i = m_post, m2i = m_pre, sd1i = sd_pre, sd2i = sd_post, ni = ni, ri = ri, data = d)
  f <- rma.uni(e$yi, e$vi, method = method, control = ctrl)
  vals <- list(estimate = f$beta[1], std_error = f$se, ci_low = f$ci.lb, ci_high = f$ci.ub,
               tau2 = f$tau2, I2 = f$I2, k = f$k)
  for (q in names(vals))
    rows[[length(rows) + 1]] <- data.frame(table = tn, measure = m, r = fmt(r),
                                           everywhere = as.integer(everywhere), method = method,
                                           quantity = q, value = fmt(vals[[q]]))
}
write.csv(do.call(rbind, rows), "prepost_r.csv", row.names = FALSE, quote = FALSE)
