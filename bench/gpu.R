# What bench/gpu.sh runs: each verb on device = "cuda", timed, with the
# device and precision it resolved to, next to the same verb on the CPU.
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args)) as.integer(args[1]) else 2000L
torch <- reticulate::import("torch")
if (!torch$cuda$is_available()) stop("torch sees no CUDA GPU here: run this on a GPU machine.")
cat(sprintf("torch %s, CUDA %s, %s; bf16 %s\n", torch$`__version__`, torch$version$cuda,
            torch$cuda$get_device_name(0L), torch$cuda$is_bf16_supported()))
print(tv_config())
imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
time <- function(expr) system.time(expr)[["elapsed"]]
for (device in c("cuda", "cpu")) {
  t_fit <- time(fit <- fine_tune(imgs, epochs = 3, device = device, seed = 1, verbose = FALSE))
  val <- augment(fit, imgs[imgs$split %in% "val" | is.na(imgs$split), ], verbose = FALSE)
  acc <- image_accuracy(val, label, .pred_class)
  cat(sprintf("[%s] fine_tune(): 3 epochs of %d images in %.1f s; device %s, precision %s; best val accuracy %.3f\n",
              device, nrow(imgs), t_fit, fit$device, precision_label(fit), max(fit_history(fit)$accuracy[fit_history(fit)$split == "val"])))
  corpus <- unlist(bench_fixtures()$make_bench_copies(imgs$path, tempfile("gpu-corpus-"), n, long_side = 400L))
  t_pred <- time(p <- predict(fit, corpus, batch_size = 256, verbose = FALSE))
  cat(sprintf("[%s] predict(): %d images in %.1f s = %.0f images/s\n", device, n, t_pred, n / t_pred))
  t_ex <- time(ex <- explain(fit, imgs$path[1:32], verbose = FALSE))
  cat(sprintf("[%s] explain(): 32 Grad-CAM heatmaps in %.1f s\n", device, t_ex))
  out <- tempfile(fileext = ".sqlite")
  t_corpus <- time(classify_folder(fit, corpus, out, chunk_size = 512, batch_size = 256, device = device, verbose = FALSE))
  rows <- read_corpus(out)
  cat(sprintf("[%s] classify_folder(): %d rows in %.1f s = %.0f images/s; agrees with predict() on %.4f\n",
              device, nrow(rows), t_corpus, n / t_corpus, mean(rows$.pred_class == p$.pred_class)))
}
