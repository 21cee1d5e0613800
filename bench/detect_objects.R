# detect_objects() against ultralytics' own predict() on the same photos, in
# one run (goal: tidyvision's overhead <= 10%). The model is YOLOv8n built
# from its yaml with random weights and saved as .pt (pretrained weights
# can't be downloaded here); its speed is that of the real YOLOv8n. The
# photos are near-copies of the shipped ones (long side `long_side` px).
# Both sides run at 640 px, batch 16, conf 0.25, iou 0.7, on the CPU; each
# is timed `reps` times after a warm-up, and the best time counts.
# Usage: Rscript bench/detect_objects.R [n_photos] [long_side] [reps]
if (file.exists("DESCRIPTION")) pkgload::load_all(".", quiet = TRUE) else library(tidyvision)
source(file.path("bench", "fixtures.R"))
args <- commandArgs(trailingOnly = TRUE)
n <- if (length(args) >= 1) as.integer(args[1]) else 96L
long_side <- if (length(args) >= 2) as.integer(args[2]) else 1024L
reps <- if (length(args) >= 3) as.integer(args[3]) else 2L

engine <- tidyvision:::engine
src <- list.files(system.file("extdata", "images", package = "tidyvision"), recursive = TRUE, full.names = TRUE)
root <- tempfile("bench-detect-")
paths <- unlist(bench_fixtures()$make_bench_copies(src, root, n, long_side = long_side))
ul <- engine$detect$ultralytics_module()
weights <- file.path(root, "yolov8n-random.pt")
ul$YOLO("yolov8n.yaml")$save(weights)

# ultralytics alone: its loader reads the files (OpenCV), its predictor
# letterboxes, runs the network and NMS; results stay ultralytics objects.
yolo <- ul$YOLO(weights)
ultralytics_predict <- function() {
  invisible(yolo$predict(as.list(paths), batch = 16L, imgsz = 640L, conf = 0.25, iou = 0.7,
                         device = "cpu", verbose = FALSE, save = FALSE))
}
tidyvision_detect <- function() {
  invisible(detect_objects(paths, model = weights, batch_size = 16, image_size = 640,
                           device = "cpu", verbose = FALSE))
}
time_best <- function(f) {
  f()  # warm-up: model load, first allocations
  min(vapply(seq_len(reps), function(i) system.time(f())[["elapsed"]], numeric(1)))
}
torch <- reticulate::import("torch")
threads <- torch$get_num_threads()
# ultralytics alone would drop to cores - 1 threads; give both the same.
reticulate::py_set_attr(reticulate::import("ultralytics.utils.torch_utils"), "NUM_THREADS", threads)
t_ul <- time_best(ultralytics_predict)
t_tv <- time_best(tidyvision_detect)
stopifnot(torch$get_num_threads() == threads)
found <- detect_objects(paths[1:4], model = weights, verbose = FALSE)
cat(sprintf("%d photos (long side %d px, %.0f MB), YOLOv8n at 640 px, batch 16, %d torch threads\n",
            n, long_side, sum(file.size(paths)) / 1e6, threads))
cat(sprintf("ultralytics predict():     %6.2f s = %5.1f img/s\n", t_ul, n / t_ul))
cat(sprintf("tidyvision detect_objects(): %4.2f s = %5.1f img/s (tibble of %d columns)\n",
            t_tv, n / t_tv, ncol(found)))
cat(sprintf("overhead: %+.1f%% (negative: faster than ultralytics alone)\n", 100 * (t_tv / t_ul - 1)))
cat(sprintf("machine: %d cores, load average %s\n", parallel::detectCores(),
            paste(readLines("/proc/loadavg", warn = FALSE), collapse = "")))
unlink(root, recursive = TRUE)
