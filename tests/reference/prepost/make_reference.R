# R references for imrstats.prepost, imrstats.controlled and imrstats.gee
# (run from this folder: Rscript --vanilla make_reference.R).
#
# Data: the seeded CSVs written by make_data.py (committed; R reads exactly the numbers
# Python reads). Fixtures (numbers printed with 17 significant digits):
#   prepost.csv     case, quantity, value   t.test(post, pre, paired = TRUE); wilcox.test
#                   (default = exact when possible, exact = FALSE with and without continuity
#                   correction); metafor::escalc SMCR and SMCC; d_z, d_av, g_av, d_rm and the
#                   reliable change index hand-computed from the published formulas.
#   controlled.csv  case, quantity, value   Morris (2008) d_ppc1, d_ppc2 and variances by
#                   hand; escalc SMCR per arm; lm(post ~ arm + pre (+ age)) + emmeans.
#                   prepost.csv also holds t.test(pre) and t.test(post) intervals (the mean rows).
#   gee.csv         case, term, quantity (estimate, std_error = robust SE, p_value = Wald),
#                   value   geepack::geeglm(value ~ arm * occasion,
#                   id = participant, waves = occasion index) for three working correlations,
#                   converged to epsilon = 1e-12 (default 1e-4 would limit the comparison).
#   versions.txt
source("../_common.R")  # fmt, load_packages, write_rows, write_versions
load_packages("metafor", "emmeans", "geepack")

read_tidy <- function(name) {
  d <- read.csv(name, colClasses = c(participant = "character", arm = "character",
                                     occasion = "character", measure = "character",
                                     rater = "character"))
  d
}
data <- list(
  single = read_tidy("prepost_single.csv"),
  small = read_tidy("prepost_small.csv"),
  rct = read_tidy("trial_rct.csv"),
  quasi = read_tidy("trial_quasi.csv")
)

# complete pairs of one rater's outcome at two occasions (one row per participant)
pairs <- function(d, rater, pre, post) {
  d <- d[d$rater == rater & d$measure == "imrs", ]
  a <- d[d$occasion == pre, c("participant", "arm", "value")]
  b <- d[d$occasion == post, c("participant", "value")]
  m <- merge(a, b, by = "participant", suffixes = c("_pre", "_post"))
  if ("age" %in% names(d)) m <- merge(m, unique(d[, c("participant", "age")]), by = "participant")
  m <- m[complete.cases(m$value_pre, m$value_post), ]
  data.frame(participant = m$participant, arm = m$arm, pre = m$value_pre, post = m$value_post,
             age = if ("age" %in% names(m)) m$age else NA)
}

rows <- list()
put <- function(case, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(case = case, quantity = quantity, value = fmt(value))
}

# ---------------------------------------------------------------- single-group pre-post
prepost_case <- function(case, p, reliability, norms) {
  x <- p$pre; y <- p$post; n <- length(x)
  s1 <- sd(x); s2 <- sd(y); r <- cor(x, y); D <- mean(y) - mean(x); sD <- sd(y - x)
  put(case, "n", n); put(case, "mean_pre", mean(x)); put(case, "sd_pre", s1)
  put(case, "mean_post", mean(y)); put(case, "sd_post", s2); put(case, "r", r)
  tt <- t.test(y, x, paired = TRUE)
  put(case, "t_estimate", tt$estimate); put(case, "t_std_error", tt$stderr)
  put(case, "t_statistic", tt$statistic); put(case, "t_df", tt$parameter)
  put(case, "t_p_value", tt$p.value); put(case, "t_ci_low", tt$conf.int[1])
  put(case, "t_ci_high", tt$conf.int[2])
  ci <- t.test(x)$conf.int; put(case, "pre_ci_low", ci[1]); put(case, "pre_ci_high", ci[2])
  ci <- t.test(y)$conf.int; put(case, "post_ci_low", ci[1]); put(case, "post_ci_high", ci[2])
  w <- wilcox.test(y, x, paired = TRUE)
  put(case, "w_V", w$statistic); put(case, "w_p_value", w$p.value)
  put(case, "w_exact", as.numeric(grepl("exact", w$method)))
  w <- wilcox.test(y, x, paired = TRUE, exact = FALSE, correct = TRUE)
  put(case, "w_normal_correct_p_value", w$p.value)
  w <- wilcox.test(y, x, paired = TRUE, exact = FALSE, correct = FALSE)
  put(case, "w_normal_p_value", w$p.value)
  es <- escalc("SMCR", m1i = mean(y), m2i = mean(x), sd1i = s1, ni = n, ri = r)
  put(case, "smcr_yi", es$yi); put(case, "smcr_vi", es$vi)
  es <- escalc("SMCC", m1i = mean(y), m2i = mean(x), sd1i = s2, sd2i = s1, ni = n, ri = r)
  put(case, "smcc_yi", es$yi); put(case, "smcc_vi", es$vi)
  # hand-computed from the published formulas (Lakens 2013; Bonett 2008 delta method)
  dz <- D / sD; put(case, "d_z", dz); put(case, "d_z_var", 1 / n + dz^2 / (2 * n))
  sav <- (s1 + s2) / 2; dav <- D / sav
  put(case, "d_av", dav)
  vav <- sD^2 / ((n - 1) * sav^2) + dav^2 * (s1^2 + s2^2 + 2 * r^2 * s1 * s2) / (8 * (n - 1) * sav^2)
  put(case, "d_av_var", vav); put(case, "d_av_var_independent", 2 / n + dav^2 / (4 * n))
  put(case, "g_av", (1 - 3 / (8 * n - 9)) * dav)
  put(case, "g_av_var", (1 - 3 / (8 * n - 9))^2 * vav)
  drm <- dz * sqrt(2 * (1 - r)); put(case, "d_rm", drm)
  put(case, "d_rm_var", 2 * (1 - r) / n + drm^2 / (2 * n))
  # Jacobson & Truax (1991) reliable change, higher = better
  sdiff <- sqrt(2) * s1 * sqrt(1 - reliability); rci <- (y - x) / sdiff; z <- qnorm(0.975)
  put(case, "rci_s_diff", sdiff)
  put(case, "rci_improved", sum(rci > z)); put(case, "rci_deteriorated", sum(rci < -z))
  put(case, "rci_unchanged", sum(abs(rci) <= z))
  m_d <- mean(x); s_d <- s1; m_f <- norms[1]; s_f <- norms[2]
  cut <- c(a = m_d + 2 * s_d, b = m_f - 2 * s_f, c = (s_d * m_f + s_f * m_d) / (s_d + s_f))
  for (k in names(cut)) {
    put(case, paste0("cutoff_", k), cut[[k]])
    put(case, paste0("recovered_", k), sum(rci > z & y > cut[[k]]))
  }
}
prepost_case("single_client", pairs(data$single, "client", "baseline", "9m"), 0.79, c(60, 6))
prepost_case("single_clinician", pairs(data$single, "clinician", "baseline", "9m"), 0.86, c(55, 7))
prepost_case("small", pairs(data$small, "client", "baseline", "9m"), 0.79, c(3.9, 0.4))
p <- pairs(data$rct, "client", "baseline", "9m")
prepost_case("rct_TAU", p[p$arm == "TAU", ], 0.79, c(60, 6))
prepost_case("rct_IMR", p[p$arm == "IMR", ], 0.79, c(60, 6))
write_rows(rows, "prepost.csv")

# ---------------------------------------------------------------- controlled pre-post
rows <- list()
controlled_case <- function(case, p, covariate = FALSE) {
  p$arm <- factor(p$arm, levels = c("TAU", "IMR"))
  st <- lapply(split(p, p$arm), function(q) {
    list(n = nrow(q), m1 = mean(q$pre), m2 = mean(q$post), s1 = sd(q$pre), s2 = sd(q$post),
         r = cor(q$pre, q$post))
  })
  cfun <- function(m) 1 - 3 / (4 * m - 1)
  d <- v <- numeric(0)
  for (a in c("TAU", "IMR")) {
    s <- st[[a]]; c1 <- cfun(s$n - 1); d[a] <- c1 * (s$m2 - s$m1) / s$s1
    v[a] <- 2 * (1 - s$r) / s$n * (s$n - 1) / (s$n - 3) * (1 + s$n * d[a]^2 / (2 * (1 - s$r))) -
      d[a]^2 / c1^2
    es <- escalc("SMCR", m1i = s$m2, m2i = s$m1, sd1i = s$s1, ni = s$n, ri = s$r)
    put(case, paste0("smcr_", a), es$yi); put(case, paste0("smcr_var_", a), es$vi)
  }
  put(case, "d_ppc1", d["IMR"] - d["TAU"]); put(case, "d_ppc1_var", v["IMR"] + v["TAU"])
  nt <- st$IMR$n; nc <- st$TAU$n; N <- nt + nc
  sp <- sqrt(((nt - 1) * st$IMR$s1^2 + (nc - 1) * st$TAU$s1^2) / (N - 2))
  sq <- sqrt(((nt - 1) * st$IMR$s2^2 + (nc - 1) * st$TAU$s2^2) / (N - 2))
  rho <- ((nt - 1) * st$IMR$r * st$IMR$s1 * st$IMR$s2 + (nc - 1) * st$TAU$r * st$TAU$s1 *
            st$TAU$s2) / ((N - 2) * sp * sq)
  cp <- cfun(N - 2)
  d2 <- cp * ((st$IMR$m2 - st$IMR$m1) - (st$TAU$m2 - st$TAU$m1)) / sp
  k <- N / (nt * nc)
  put(case, "d_ppc2", d2)
  put(case, "d_ppc2_var", 2 * cp^2 * (1 - rho) * k * ((N - 2) / (N - 4)) *
        (1 + d2^2 / (2 * (1 - rho) * k)) - d2^2)
  fit <- if (covariate) lm(post ~ arm + pre + age, data = p) else lm(post ~ arm + pre, data = p)
  em <- summary(emmeans(fit, "arm"), infer = TRUE)
  for (i in seq_len(nrow(em))) {
    a <- as.character(em$arm[i])
    put(case, paste0("emmean_", a), em$emmean[i]); put(case, paste0("emmean_se_", a), em$SE[i])
    put(case, paste0("emmean_df_", a), em$df[i])
    put(case, paste0("emmean_lower_", a), em$lower.CL[i])
    put(case, paste0("emmean_upper_", a), em$upper.CL[i])
  }
  ct <- summary(contrast(emmeans(fit, "arm"), "revpairwise"), infer = TRUE)
  put(case, "diff_estimate", ct$estimate); put(case, "diff_se", ct$SE); put(case, "diff_df", ct$df)
  put(case, "diff_t", ct$t.ratio); put(case, "diff_p", ct$p.value)
  put(case, "diff_lower", ct$lower.CL); put(case, "diff_upper", ct$upper.CL)
}
controlled_case("rct_client_9m", pairs(data$rct, "client", "baseline", "9m"))
controlled_case("rct_client_9m_age", pairs(data$rct, "client", "baseline", "9m"), covariate = TRUE)
controlled_case("rct_clinician_6m", pairs(data$rct, "clinician", "baseline", "6m"))
controlled_case("quasi_client_12m", pairs(data$quasi, "client", "baseline", "12m"))
write_rows(rows, "controlled.csv")

# ---------------------------------------------------------------- GEE
rows <- list()
gee_case <- function(case, d, rater, levels, corstr) {
  d <- d[d$rater == rater & d$measure == "imrs" & !is.na(d$value), ]
  d$arm <- factor(d$arm, levels = c("TAU", "IMR"))
  d$occasion <- factor(d$occasion, levels = levels)
  d$wave <- as.integer(d$occasion)
  d <- d[order(d$participant, d$wave), ]
  d$id <- as.integer(factor(d$participant))
  fit <- geeglm(value ~ arm * occasion, id = id, waves = wave, data = d, family = gaussian,
                corstr = corstr, control = geese.control(epsilon = 1e-12, maxit = 200))
  s <- summary(fit)$coefficients
  for (i in seq_len(nrow(s))) {
    rows[[length(rows) + 1]] <<- data.frame(case = case, term = rownames(s)[i],
      quantity = c("estimate", "std_error", "p_value"),
      value = fmt(c(s[i, "Estimate"], s[i, "Std.err"], s[i, "Pr(>|W|)"])))
  }
  a <- if (corstr == "independence") NA else unname(fit$geese$alpha)
  rows[[length(rows) + 1]] <<- data.frame(case = case, term = c("alpha", "scale"),
    quantity = "estimate", value = fmt(c(a, unname(fit$geese$gamma))))
}
for (corstr in c("independence", "exchangeable", "ar1")) {
  gee_case(paste0("rct_", corstr), data$rct, "client", c("baseline", "3m", "6m", "9m"), corstr)
  gee_case(paste0("quasi_", corstr), data$quasi, "client", c("baseline", "6m", "12m"), corstr)
}
write_rows(rows, "gee.csv")

write_versions("versions.txt", c("metafor", "emmeans", "geepack"))
