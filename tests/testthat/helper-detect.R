# Generated shapes (a red square or a blue disc on noise, 128 px) and one
# tiny detector trained on them (~40 s), shared by the detection and tagging
# tests.
detect_cache <- new.env()

shape_boxes <- function() {
  if (is.null(detect_cache$shapes)) {
    root <- file.path(tempdir(), "tv-shapes")
    unlink(root, recursive = TRUE)
    cols <- fixtures()$make_shapes(root, n = 24L, n_empty = 2L)
    shapes <- tibble::tibble(
      path = col_of(cols$path), class = col_of(cols$class),
      xmin = col_of(cols$xmin, "dbl"), ymin = col_of(cols$ymin, "dbl"),
      xmax = col_of(cols$xmax, "dbl"), ymax = col_of(cols$ymax, "dbl")
    )
    # The first 20 train; the last 4 shapes and the 2 empty images validate.
    shapes$split <- rep(c("train", "val"), c(20, 6))
    detect_cache$shapes <- shapes
  }
  detect_cache$shapes
}

# train_detector()'s defaults (the tiny model and the settings for small
# data): 20 training images at 8 a batch learn in 40 epochs (~45 s). The
# warnings it gave are kept for the test of those defaults.
shape_detector <- function() {
  if (is.null(detect_cache$fit)) {
    detect_cache$warnings <- character()
    detect_cache$fit <- withCallingHandlers(
      train_detector(shape_boxes(), epochs = 40, image_size = 128),
      warning = function(w) detect_cache$warnings <- c(detect_cache$warnings, class(w)[1])
    )
  }
  detect_cache$fit
}

box_iou <- function(a, b) {
  w <- pmax(0, pmin(a$xmax, b$xmax) - pmax(a$xmin, b$xmin))
  h <- pmax(0, pmin(a$ymax, b$ymax) - pmax(a$ymin, b$ymin))
  inter <- w * h
  inter / ((a$xmax - a$xmin) * (a$ymax - a$ymin) + (b$xmax - b$xmin) * (b$ymax - b$ymin) - inter)
}

# Set environment variables in the running Python (R's Sys.setenv() does not
# reach os.environ once Python has started), undone when the test ends.
local_py_env <- function(..., .env = parent.frame()) {
  os <- reticulate::import("os", convert = TRUE)
  vars <- list(...)
  old <- lapply(names(vars), function(v) os$environ$get(v))
  for (v in names(vars)) os$environ$update(rlang::set_names(list(vars[[v]]), v))
  withr::defer({
    for (i in seq_along(vars)) {
      if (is.null(old[[i]])) os$environ$pop(names(vars)[i], NULL) else
        os$environ$update(rlang::set_names(list(old[[i]]), names(vars)[i]))
    }
  }, envir = .env)
}
