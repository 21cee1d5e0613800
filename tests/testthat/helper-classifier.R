# A separable two-class set (red- vs blue-tinted photos) with train/val/test
# folders, and one small fit of it shared by the classifier tests.
cache <- new.env()

separable_images <- function() {
  if (is.null(cache$images)) {
    root <- file.path(tempdir(), "tv-separable")
    unlink(root, recursive = TRUE)
    fx <- fixtures()
    fx$make_class_folder(root, n_per_class = 12L, split = "train", seed = 0L)
    fx$make_class_folder(root, n_per_class = 6L, split = "val", seed = 1L)
    fx$make_class_folder(root, n_per_class = 3L, split = "test", seed = 2L)
    cache$images <- image_files(root)
  }
  cache$images
}

small_fit <- function() {
  if (is.null(cache$fit)) {
    cache$fit <- fine_tune(separable_images(), epochs = 3, learning_rate = 0.01,
                           image_size = 64, batch_size = 8, seed = 3)
  }
  cache$fit
}

# `fit` saved into a folder "model" that is deleted when the calling test ends.
saved_fit_dir <- function(fit, .env = parent.frame()) {
  dir <- file.path(withr::local_tempdir(.local_envir = .env), "model")
  save_classifier(fit, dir)
  dir
}

# Progress output that is the same on every run: each bar's final 100% line,
# without the bar's drawing or its ETA. Lines in between depend on timing.
# (expect_snapshot() calls `transform` once per message line.)
scrub_progress <- function(lines) {
  lines <- lines[!grepl("(^|[^0-9])[0-9]{1,2}%", lines)]
  sub("^(\\s*.*?) \\S+ +100%.*$", "\\1 <bar> 100%", lines, perl = TRUE)
}
