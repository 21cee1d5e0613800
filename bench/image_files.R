# image_files() throughput on 10,000 files (goal: under 10 s here).
# Usage: Rscript bench/image_files.R [n_files]
library(tidyvision)
`%||%` <- function(a, b) if (is.na(a)) b else a
n <- as.integer(commandArgs(trailingOnly = TRUE)[1] %||% 10000L)
root <- tempfile("bench-images-")
src <- list.files(system.file("extdata", "images", package = "tidyvision"),
                  recursive = TRUE, full.names = TRUE)
for (i in seq_len(n)) {
  dir <- file.path(root, paste0("class", i %% 3))
  if (!dir.exists(dir)) dir.create(dir, recursive = TRUE)
}
targets <- file.path(root, paste0("class", seq_len(n) %% 3), sprintf("img%05d.jpg", seq_len(n)))
invisible(file.copy(rep_len(src, n), targets))
invisible(image_files(root[[1]], recursive = FALSE) |> suppressWarnings()) # start Python
t <- system.time(imgs <- image_files(root))[["elapsed"]]
cat(sprintf("image_files(): %d files in %.2f s = %.0f files/s (readable: %d)\n",
            nrow(imgs), t, nrow(imgs) / t, sum(imgs$readable)))
unlink(root, recursive = TRUE)
