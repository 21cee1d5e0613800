# Explanations and the offline backbones, in one run:
#  1. explain() images/s against predict() images/s, same classifier, same
#     images (both warm: the model is loaded and the files are in the OS cache);
#  2. EfficientNet-Lite0 vs Lite1 vs Lite2, head-only fine-tuning on the same
#     images and split: best validation accuracy and seconds (each at its
#     native size, and all at 224).
#   Rscript bench/explain.R [FOLDER]
library(tidyvision)
args <- commandArgs(trailingOnly = TRUE)
folder <- if (length(args)) args[[1]] else system.file("extdata", "images", package = "tidyvision")
imgs <- split_images(image_files(folder), prop = c(train = 0.7, val = 0.3), seed = 1)
cfg <- tv_config()
cat(sprintf("%d images (%d train, %d val), %s, %s, %d threads\n", nrow(imgs), sum(imgs$split == "train"),
            sum(imgs$split == "val"), cfg$device, cfg$precision, cfg$threads))

seconds <- function(expr) unname(system.time(expr)[["elapsed"]])
fit <- fine_tune(imgs, epochs = 3, train_layers = "head", seed = 1, verbose = FALSE)
invisible(predict(fit, imgs[1:8, ]))
invisible(explain(fit, imgs[1:8, ]))
t_predict <- seconds(predict(fit, imgs))
t_explain <- seconds(ex <- explain(fit, imgs))
cat(sprintf("predict(): %.1f img/s; explain(): %.1f img/s (%.1fx the time of predict)\n",
            nrow(imgs) / t_predict, nrow(imgs) / t_explain, t_explain / t_predict))

runs <- expand.grid(backbone = paste0("efficientnet_lite", 0:2), size = c("native", "224"),
                    stringsAsFactors = FALSE)
native <- c(efficientnet_lite0 = 224, efficientnet_lite1 = 240, efficientnet_lite2 = 260)
for (i in seq_len(nrow(runs))) {
  size <- if (runs$size[i] == "native") native[[runs$backbone[i]]] else 224
  tv_cache_clear()
  s <- seconds(f <- fine_tune(imgs, backbone = runs$backbone[i], train_layers = "head", image_size = size,
                              epochs = 10, seed = 1, verbose = FALSE))
  best <- fit_history(f)
  best <- best[best$epoch == f$best_epoch & best$split == "val", ]
  cat(sprintf("%-18s at %d px: val accuracy %.3f (best epoch %d), %.1f s\n",
              runs$backbone[i], size, best$accuracy, f$best_epoch, s))
}
