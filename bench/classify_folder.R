# classify_folder() against predict() (goal: >= 0.9x the images per second),
# its peak memory at n_small and n images (goal: < 150 MB apart: memory
# stays flat), and the cost of resuming a finished run.
# The photos are near-copies of the shipped ones at web size (random crops
# of up to 4% a side, +-10% tints, long side 600-800 px, JPEG quality 75-95),
# built once into `dir` and reused.
# R and the engine are one process (reticulate embeds Python), so one peak
# RSS (VmHWM) covers both; each run is measured in a fresh R process.
# Usage: Rscript bench/classify_folder.R [n = 20000] [n_small = 2000] [dir]
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.integer(args[1]) else 20000L
n_small <- if (length(args) >= 2) as.integer(args[2]) else 2000L
dir <- if (length(args) >= 3) args[3] else file.path(tempdir(), "..", "tidyvision-bench-corpus")
dir <- normalizePath(dir, mustWork = FALSE)

photos <- function(k) {
  folder <- file.path(dir, sprintf("n%d", k))
  have <- length(list.files(folder, pattern = "[.]jpg$"))
  if (have < k) {
    src <- list.files(system.file("extdata", "images", package = "tidyvision"), recursive = TRUE,
                      full.names = TRUE)
    t <- system.time(bench_fixtures()$make_bench_copies(src, folder, k, long_side = 800L))[["elapsed"]]
    cat(sprintf("built %d photos in %s in %.0f s\n", k, folder, t))
  }
  folder
}

fit_dir <- file.path(dir, "classifier")
if (!dir.exists(fit_dir)) {
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  save_classifier(fine_tune(imgs, epochs = 1, train_layers = "head", seed = 1), fit_dir)
}
fit <- load_classifier(fit_dir)

# Throughput on the same n_small photos, in this process.
small <- photos(n_small)
paths <- sort(list.files(small, full.names = TRUE))
invisible(predict(fit, paths[1:64]))  # warm up: load the model once
out <- file.path(dir, "throughput.sqlite")
t_corpus <- system.time(classify_folder(fit, small, out, overwrite = TRUE, verbose = FALSE))[["elapsed"]]
t_predict <- system.time(predict(fit, paths, type = "prob"))[["elapsed"]]
t_resume <- system.time(classify_folder(fit, small, out, verbose = FALSE))[["elapsed"]]
cat(sprintf("%d photos: predict() %.1f img/s, classify_folder() %.1f img/s (%.2fx)\n", n_small,
            n_small / t_predict, n_small / t_corpus, t_predict / t_corpus))
cat(sprintf("resuming the finished run of %d photos: %.2f s\n", n_small, t_resume))

# Peak memory, each size in a fresh R process.
peak <- function(folder) {
  callr::r(function(fit_dir, folder, out) {
    library(tidyvision)
    t <- system.time(classify_folder(fit_dir, folder, out, overwrite = TRUE, verbose = FALSE))[["elapsed"]]
    t_resume <- system.time(classify_folder(fit_dir, folder, out, verbose = FALSE))[["elapsed"]]
    status <- readLines("/proc/self/status")
    list(seconds = t, resume = t_resume, mb = as.numeric(gsub("\\D", "", grep("^VmHWM", status, value = TRUE))) / 1024)
  }, args = list(fit_dir, folder, file.path(dir, "peak.sqlite")), libpath = .libPaths())
}
for (k in unique(c(n_small, n))) {
  res <- peak(photos(k))
  cat(sprintf("%d photos in a fresh R session: %.0f s (%.1f img/s), peak RSS (R + engine) %.0f MB, resume %.2f s\n",
              k, res$seconds, k / res$seconds, res$mb, res$resume))
}
