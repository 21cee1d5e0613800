# find_duplicates() on 10,000 photos (goal: under 60 s here, both methods).
# The photos are near-copies of the 89 shipped ones (random crops of up to
# 4% a side, +-10% tints, resized to a long side of 600-800 px, re-encoded at
# JPEG quality 75-95), so no two files hash alike; phash should put each in
# its source's group.
# Usage: Rscript bench/find_duplicates.R [n_files] [long_side]
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.integer(args[1]) else 10000L
long_side <- if (length(args) >= 2) as.integer(args[2]) else 800L
src <- list.files(system.file("extdata", "images", package = "tidyvision"),
                  recursive = TRUE, full.names = TRUE)
root <- tempfile("bench-duplicates-")
t_build <- system.time(
  paths <- unlist(bench_fixtures()$make_bench_copies(src, root, n, long_side = long_side))
)[["elapsed"]]
cat(sprintf("built %d photos (long side <= %d px, %.0f MB) in %.1f s\n", n, long_side,
            sum(file.size(paths)) / 1e6, t_build))
source_of <- (seq_len(n) - 1) %% length(src) + 1

# Pairwise recall/precision of the groups against the source photo, from the
# contingency table (no n x n matrix).
pairs <- function(x) sum(choose(x, 2))
for (method in c("phash", "exact")) {
  t <- system.time(dups <- find_duplicates(paths, method = method))[["elapsed"]]
  both <- pairs(table(dups$group, source_of))
  cat(sprintf(
    "find_duplicates(method = \"%s\"): %d photos in %.1f s = %.0f photos/s; %d groups; pair recall %.4f, precision %.4f\n",
    method, n, t, n / t, max(dups$group, na.rm = TRUE),
    both / pairs(table(source_of)), if (pairs(table(dups$group)) > 0) both / pairs(table(dups$group)) else NA
  ))
}
cat(sprintf("machine: %d cores, load average %s\n", parallel::detectCores(),
            paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
unlink(root, recursive = TRUE)
