# The engine gives memory back: resident memory of the R session (which
# holds the engine) before a fit, after it (decoded images and features in
# the cache), and after tv_cache_clear().
#   Rscript bench/cache.R [FOLDER]
library(tidyvision)
args <- commandArgs(trailingOnly = TRUE)
folder <- if (length(args)) args[[1]] else system.file("extdata", "images", package = "tidyvision")
mb <- function() attr(tv_cache(), "rss") / 2^20
imgs <- image_files(folder)
invisible(tv_config())
before <- mb()
fit <- fine_tune(imgs, epochs = 1, train_layers = "all", image_size = 224, verbose = FALSE)
held <- tv_cache()
after_fit <- mb()
freed <- tv_cache_clear()
after_clear <- mb()
cat(sprintf("%d images; cache after the fit: %s\n", nrow(imgs),
            paste(sprintf("%s %.1f MB", held$space, held$bytes / 2^20), collapse = ", ")))
cat(sprintf("RSS: before the fit %.0f MB, after it %.0f MB, after tv_cache_clear() %.0f MB (freed %.1f MB of cache)\n",
            before, after_fit, after_clear, freed / 2^20))
