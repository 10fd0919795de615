# lme4 + lmerTest + emmeans references for the partially nested model,
# imrstats.mixed(..., cluster = "cluster"). Run from this folder:
#   Rscript --vanilla make_reference_nested.R
#
# Data: nested_13.csv and nested_int.csv, written by make_data.py from imrstats.simulate_trial
# (IMR participants in therapy groups, column cluster; TAU participants have none).
# The model: the in-group indicator imr (1 when cluster is set) and a grouping factor
# group = cluster, or the participant's own id when cluster is missing (singleton clusters,
# whose group effect is multiplied by imr = 0 and so does not exist):
#   cluster_random = "slope":     value ~ time * arm + (time | participant) + (0 + imr:time | group)
#   cluster_random = "intercept": ... + (0 + imr | group)
#   cluster_random = "both":      ... + (0 + imr + imr:time | group)   (correlated)
#   cluster_random = "none":      the unclustered model, for the df comparison
# (participant part (1 | participant) for random = "intercept").
# As make_reference.R: lmerTest::lmer with bobyqa (rhoend 1e-12), from lme4's start and three
# other starting values of theta, the best optimum kept. Fixtures (17 significant digits):
#   nested_fixed.csv, nested_random.csv, nested_fit.csv, nested_emmeans.csv,
#   nested_contrasts.csv (columns as the unnested fixtures; nested_fit.csv has the number of
#   therapy groups, nclusters, and theta1..theta6).
source("_common.R")  # read_datasets (imr, group), cluster_cases, fit_cluster_cases, tables

datasets <- read_datasets(c("nested_13", "nested_int"))
cases <- cluster_cases(list(
  c("nested_13", "slope", "slope", "REML"), c("nested_int", "intercept", "intercept", "REML"),
  c("nested_13", "slope", "slope", "ML"), c("nested_int", "intercept", "intercept", "ML"),
  c("nested_13", "slope", "none", "REML"), c("nested_13", "slope", "both", "REML"),
  c("nested_13", "intercept", "slope", "REML"), c("nested_int", "slope", "both", "REML")
), "time * arm")
fits <- fit_cluster_cases(cases, datasets, "nested")

emm_cases <- list(
  list(case = "nested_13-slope-slope-REML", at = list(time = c(0, 6, 12))),
  list(case = "nested_13-slope-slope-ML", at = list(time = c(0, 6, 12))),
  list(case = "nested_int-intercept-intercept-REML", at = list(time = c(0, 12)))
)
emm_rows <- list(); con_rows <- list()
for (ec in emm_cases) {
  emm <- emmeans(fits[[ec$case]], ~ arm | time, at = ec$at, lmer.df = "satterthwaite")
  emm_rows[[ec$case]] <- emm_table(emm, ec$case, "time", cols = "time")
  con_rows[[ec$case]] <- contrast_table(emm, ec$case, "time",
                                        c("none", "holm", "bonferroni", "sidak"), cols = "time")
}
write_rows(emm_rows, "nested_emmeans.csv")
write_rows(con_rows, "nested_contrasts.csv")
