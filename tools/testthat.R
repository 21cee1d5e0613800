# Runs testthat on the source tree and writes "passed failed skipped" (tests,
# not expectations) to the file named by the first argument; a second
# argument keeps only the test files whose names match that regex.
args <- commandArgs(trailingOnly = TRUE)
filter <- if (length(args) > 1) args[[2]] else NULL
res <- testthat::test_local(".", filter = filter, reporter = testthat::ProgressReporter$new(show_praise = FALSE),
                            stop_on_failure = FALSE, stop_on_warning = FALSE)
df <- as.data.frame(res)
failed <- df$failed > 0 | df$error
skipped <- !failed & df$skipped
writeLines(paste(sum(!failed & !skipped), sum(failed), sum(skipped)), args[[1]])
