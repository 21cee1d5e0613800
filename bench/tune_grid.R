# The book's 12-combination grid (learning rate 0.005/0.001/0.0005 x momentum
# 0.9/0.7 x batch size 1/4), head-only, on ~400 photos (goal: under 60 s).
# Usage: Rscript bench/tune_grid.R [FOLDER] [EPOCHS]
# Without FOLDER, ~400 photos are made from inst/extdata as bench/fine_tune.py does.
library(tidyvision)
args <- commandArgs(trailingOnly = TRUE)
folder <- if (length(args) >= 1) args[[1]] else {
  bench <- reticulate::import_from_path("fine_tune", "bench")
  bench$make_set(file.path(tempfile("tv-grid-"), "made"))
}
epochs <- if (length(args) >= 2) as.integer(args[[2]]) else 10L
imgs <- image_files(folder)
grid <- list(learning_rate = c(0.005, 0.001, 0.0005), momentum = c(0.9, 0.7), batch_size = c(1, 4))
t <- system.time(res <- tune_grid(imgs, grid = grid, epochs = epochs, train_layers = "head"))[["elapsed"]]
print(res[c("learning_rate", "momentum", "batch_size", "accuracy", "f1", "best_epoch", "seconds")], n = 12)
cat(sprintf("tune_grid(): %d combinations x %d epochs, head-only, %d images: %.1f s\n",
            nrow(res), epochs, nrow(imgs), t))
