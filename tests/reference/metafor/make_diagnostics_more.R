# More R references for the MetaResult diagnostics (metafor 3.8): the grid of make_diagnostics.R
# extended to dat.curtis1998 (ROM) and to the Paule-Mandel estimator. Sourced at the end of
# make_reference.R (uses its `sets`, `fmt`, `ctrl`, `cur` and make_diagnostics.R's `diag_ni` and
# `diagnose`, which appends the rows of one cell to `rows`); writes, next to itself:
#   diagnostics_more_ni.csv  n_i of curtis1998 (n1i + n2i; the others are in diagnostics_ni.csv)
#   diagnostics_more.csv.gz  the format of diagnostics.csv, for the cells that diagnostics.csv
#                            does not hold: curtis1998_rom x {FE z; DL, REML, PM x z, knha} and
#                            bcg_rr, normand1999_smd, molloy2014_zcor x PM x {z, knha}
#                            (influence also with the moderator for bcg_rr and curtis1998_rom)
stopifnot(exists("fmt"), exists("sets"), exists("diag_ni"), exists("diagnose"))
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
for (cell in more_cells) diagnose(cell[1], cell[2:3], more_ni[[cell[1]]])
# gzip (R writes no timestamp in the header, so regenerating stays byte-identical): 2.7 MB as text
write.csv(do.call(rbind, rows), gzfile("diagnostics_more.csv.gz"), row.names = FALSE, quote = FALSE)
