# Helpers shared by the R reference scripts of several topic folders. Each script runs from its
# own folder and sources this file by relative path: source("../_common.R").
options(warn = 1)

# Numbers with 17 significant digits, NA as "NA" (metafor/ writes NA as "" with its own fmt).
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

# Attach packages without their start-up messages.
load_packages <- function(...) {
  suppressPackageStartupMessages(for (p in c(...)) library(p, character.only = TRUE))
}

# A fixture from a list of data frames with the same columns.
write_rows <- function(rows, file) {
  write.csv(do.call(rbind, rows), file, row.names = FALSE, quote = FALSE)
}

# R's version, then "package version" for each package, then any extra lines.
write_versions <- function(file, packages, extra = character(0)) {
  versions <- vapply(packages, function(p) as.character(packageVersion(p)), "")
  writeLines(c(R.version.string, paste(packages, versions), extra), file)
}
