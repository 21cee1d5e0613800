#' Train a YOLO detector for your own objects
#'
#' Teaches YOLOv8 (ultralytics) to find objects of your own classes (flags,
#' police, placards, logos) from images with hand-drawn boxes. The result
#' works with [detect_objects()], [count_objects()] and [autotag()].
#'
#' **Data.** Either the path of a YOLO `data.yaml` (the format of
#' ultralytics, Roboflow and CVAT exports: `train:`, `val:` and `names:`),
#' or a tibble of boxes with one row per box: `path`, `class`, `xmin`,
#' `ymin`, `xmax`, `ymax` in pixels of the image as displayed (as
#' [detect_objects()] returns them). An image with nothing to find is a row
#' with `class` and the box `NA`; it teaches the model what is not an
#' object. A `split` column (`"train"`, `"val"`; `"test"` rows are left
#' out) says which images validate; without one, a random fifth of the
#' images does (by `seed`). The tibble is written as a YOLO dataset in the
#' run folder; images are linked, not copied, except EXIF-rotated ones,
#' which are saved upright. A `data.yaml` is copied with absolute paths and
#' without its `download:` entry (which ultralytics would run as a script),
#' and ultralytics' `labels.cache` is not written into your folders.
#'
#' **Model.** `"yolov8-tiny.yaml"` (the default) is tidyvision's YOLOv8 at
#' half the width of YOLOv8n, trained from scratch: it needs no download and
#' learns from a few hundred images, or a few dozen simple ones, on a CPU.
#' `"yolov8n.yaml"` and other ultralytics model files (`"yolo11n.yaml"`),
#' or your own `.yaml`, are larger and need more images and epochs.
#' Starting from published weights (`"yolov8n.pt"`, downloaded once when
#' online, see [detect_objects()]) or a detector trained before learns
#' faster from fewer images.
#'
#' **Settings for small data.** ultralytics' defaults are made for COCO
#' (118,000 images): they take an optimizer step only every 64 images
#' (`nbs = 64`), warm up for 3 epochs and choose the learning rate from the
#' number of steps. On a hundred images that is a handful of steps, and a
#' detector from scratch learns nothing (mAP50 0 in every epoch). So
#' tidyvision trains by default with a step per batch (`nbs = batch_size`),
#' no warm-up (`warmup_epochs = 0`), AdamW at `lr0 = 0.003`, and without
#' mosaic augmentation (`mosaic = 0`, which shrinks small sets' objects
#' further). On 160 images of 320 pixels this reaches mAP50 0.99 in 10
#' epochs (45 s on a laptop CPU) where ultralytics' defaults stay at 0. Any
#' of these can be overridden through `...`, e.g. ultralytics' own:
#' `nbs = 64, warmup_epochs = 3, optimizer = "auto", mosaic = 1`. When the
#' validation mAP50 stays at 0 in every epoch, a warning of class
#' `tidyvision_warning_no_learning` says so.
#'
#' Training runs offline: no plots, fonts, hub, loggers, mixed-precision
#' check or analytics.
#'
#' @param data A YOLO `data.yaml` file, or a tibble of boxes (see Data).
#' @param model The starting model (see Model), a `.pt` file or a
#'   `tv_detector`.
#' @param epochs Passes over the training images.
#' @param image_size Side in pixels of the square network input (a multiple
#'   of 32).
#' @param batch_size Images per gradient step.
#' @param seed Random seed (initialisation, augmentation, split).
#' @param device `"auto"`, `"cpu"`, `"cuda"` or `"mps"`.
#' @param dir Folder to keep the run in (weights in `train/weights/`,
#'   per-epoch metrics in `train/results.csv`). By default a temporary
#'   folder that lasts the R session.
#' @param overwrite Replace `dir` if it exists.
#' @param verbose Show a progress bar (one step per epoch).
#' @param ... Further ultralytics training settings, e.g. `lr0 = 0.001`,
#'   `patience = 20`; they replace the settings for small data (see above).
#' @return A `tv_detector`: the best weights (by mAP50-95 on the validation
#'   images), the classes, and the metrics of each epoch: `fit_history()` gives
#'   them as a tibble (`epoch`, `train_box_loss`, `train_cls_loss`,
#'   `train_dfl_loss`, `precision`, `recall`, `map50`, `map50_95`,
#'   `val_box_loss`, `val_cls_loss`, `val_dfl_loss`, `learning_rate`,
#'   `seconds`), `autoplot()` draws them.
#' @export
#' @examplesIf tv_available()
#' # Twelve images of a red square on grey noise, and the square's box
#' dir <- file.path(tempdir(), "squares")
#' dir.create(dir, showWarnings = FALSE)
#' set.seed(1)
#' boxes <- do.call(rbind, lapply(1:12, function(i) {
#'   x <- sample(0:80, 1)
#'   y <- sample(0:80, 1)
#'   s <- sample(30:48, 1)
#'   path <- file.path(dir, sprintf("square%02d.png", i))
#'   png(path, 128, 128)
#'   par(mar = c(0, 0, 0, 0))
#'   plot.new()
#'   plot.window(c(0, 128), c(128, 0), xaxs = "i", yaxs = "i")
#'   rasterImage(matrix(grey(runif(256, 0.3, 0.7)), 16), 0, 128, 128, 0)
#'   rect(x, y, x + s, y + s, col = "red", border = NA)
#'   dev.off()
#'   data.frame(path = path, class = "square", xmin = x, ymin = y, xmax = x + s, ymax = y + s)
#' }))
#' fit <- train_detector(boxes, epochs = 3, image_size = 128, batch_size = 4)
#' fit
#' fit_history(fit)
#' autoplot(fit)
train_detector <- function(data, model = "yolov8-tiny.yaml", epochs = 50, image_size = 640,
                           batch_size = 8, seed = 1, device = "auto", dir = NULL,
                           overwrite = FALSE, verbose = tv_verbose(), ...) {
  check_count(epochs); check_count(image_size); check_count(batch_size)
  check_seed(seed)
  check_flag(overwrite)
  settings <- training_settings(...)
  start <- detector_weights(model)
  target <- run_folder(dir, overwrite)
  run <- if (is.null(dir)) target else tempfile(".tidyvision-detector-", tmpdir = dirname(target))
  dir.create(run, recursive = TRUE, showWarnings = FALSE)
  if (!is.null(dir)) on.exit(unlink(run, recursive = TRUE), add = TRUE)
  yaml <- detector_data(data, run, seed)
  res <- rlang::exec(engine_call, "detect_train.train", yaml, run,
    model = start, epochs = as.integer(epochs),
    image_size = as.integer(image_size), batch_size = as.integer(batch_size),
    seed = as.integer(seed), device = device,
    progress = progress_callback(verbose, "Training detector"), !!!settings)
  if (!is.null(dir)) replace_dir(run, target)
  fit <- new_detector(res, run, target, model)
  warn_no_learning(fit$history)
  fit
}

warn_no_learning <- function(history) {
  if (nrow(history) == 0 || any(history$map50 > 0, na.rm = TRUE)) return(invisible())
  tv_warn(c("The detector learned nothing: validation mAP50 was 0 in all {nrow(history)} epoch{?s}.",
            i = "It finds none of the validation objects. Train for more epochs, check the boxes with {.fn plot_detections}, or start from published weights ({.code model = \"yolov8n.pt\"})."),
          class = "no_learning")
}

training_settings <- function(..., call = caller_env()) {
  settings <- list(...)
  if (length(settings) && (is.null(names(settings)) || any(!nzchar(names(settings))))) {
    tv_abort("Every setting in {.arg ...} must be named, e.g. {.code lr0 = 0.002}.",
             class = "bad_argument", call = call)
  }
  settings
}

run_folder <- function(dir, overwrite, call = caller_env()) {
  if (is.null(dir)) return(tempfile("tidyvision-detector-"))
  if (!rlang::is_string(dir)) {
    tv_abort("{.arg dir} must be a folder path.", class = "bad_argument", call = call)
  }
  if (file.exists(dir) && !overwrite) {
    tv_abort(c("{.path {dir}} already exists.", i = "Use {.code overwrite = TRUE} to replace it."),
             class = "exists", call = call)
  }
  dir.create(dirname(normalizePath(dir, mustWork = FALSE)), recursive = TRUE, showWarnings = FALSE)
  normalizePath(dir, mustWork = FALSE)
}

# The data.yaml to train on: the user's, or one written from a box tibble.
detector_data <- function(data, run, seed, call = caller_env()) {
  if (rlang::is_string(data)) {
    if (!file.exists(data)) {
      tv_abort("Can't find {.path {data}}.", class = "path_not_found", call = call)
    }
    return(normalizePath(data))
  }
  if (!is.data.frame(data)) {
    tv_abort(c("{.arg data} must be the path of a YOLO {.file data.yaml} or a tibble of boxes.",
               i = "A box tibble has columns {.field path, class, xmin, ymin, xmax, ymax}."),
             class = "bad_argument", call = call)
  }
  boxes <- check_boxes(data, call)
  images <- box_images(boxes, seed, call)
  classes <- if (is.factor(boxes$class)) levels(boxes$class) else sort(unique(stats::na.omit(boxes$class)))
  has <- which(!is.na(boxes$class) & boxes$path %in% images$path)
  res <- engine_call("detect_train.write_dataset", file.path(run, "dataset"),
                     as.list(images$path), as.list(images$split),
                     as.list(match(boxes$path[has], images$path) - 1L),
                     as.list(match(as.character(boxes$class[has]), classes) - 1L),
                     as.list(boxes$xmin[has]), as.list(boxes$ymin[has]),
                     as.list(boxes$xmax[has]), as.list(boxes$ymax[has]), as.list(classes), call = call)
  warn_unreadable(col_of(res$skipped_path), col_of(res$skipped_problem), "{?it was/they were} skipped")
  res$data
}

check_boxes <- function(data, call) {
  need <- c("path", "class", "xmin", "ymin", "xmax", "ymax")
  missing <- setdiff(need, names(data))
  if (length(missing)) {
    tv_abort(c("The boxes in {.arg data} lack column{?s} {.field {missing}}.",
               i = "A row per box: {.field {need}}, in pixels."), class = "missing_column", call = call)
  }
  if (!all(vapply(data[need[3:6]], is.numeric, logical(1)))) {
    tv_abort("{.field xmin, ymin, xmax, ymax} must be numbers (pixels).", class = "bad_argument", call = call)
  }
  box <- !is.na(data$class)
  if (!any(box)) {
    tv_abort("{.arg data} has no boxes: every {.field class} is {.code NA}.", class = "no_images", call = call)
  }
  bad <- which(box & !(data$xmin < data$xmax & data$ymin < data$ymax) %in% TRUE)
  if (length(bad)) {
    tv_abort(c("{length(bad)} box{?es} {?has/have} a missing or empty extent (need {.code xmin < xmax} and {.code ymin < ymax}):",
               bullets_of(paste0("row ", bad, ": ", data$path[bad]))), class = "bad_boxes", call = call)
  }
  data$path <- expand_paths(data$path)
  data
}

# One row per image with its split: from `split`, or a random fifth for val.
box_images <- function(boxes, seed, call) {
  paths <- unique(boxes$path)
  if ("split" %in% names(boxes) && !all(is.na(boxes$split))) {
    split <- as.character(boxes$split[match(paths, boxes$path)])
    keep <- split %in% c("train", "val")
    if (!all(c("train", "val") %in% split)) {
      tv_abort("{.field split} must have both {.val train} and {.val val} images.", class = "bad_argument", call = call)
    }
    return(tibble::tibble(path = paths[keep], split = split[keep]))
  }
  if (length(paths) < 2) {
    tv_abort("Training needs at least two images (one to validate).", class = "no_images", call = call)
  }
  n_val <- max(1L, round(length(paths) / 5))
  val <- withr::with_seed(seed, sample.int(length(paths), n_val))
  tibble::tibble(path = paths, split = ifelse(seq_along(paths) %in% val, "val", "train"))
}

new_detector <- function(res, run, target, model) {
  moved <- function(p) sub(run, target, p, fixed = TRUE)
  h <- res$history
  history <- tibble::as_tibble(lapply(h, function(col) col_of(col, "dbl")))
  history$epoch <- as.integer(history$epoch)
  structure(list(
    weights = moved(res$weights), carried = carry_weights(moved(res$weights)),
    classes = col_of(res$classes), dir = moved(res$dir),
    model = if (inherits(model, "tv_detector")) "tv_detector" else model,
    image_size = as.integer(res$image_size), history = history, seconds = res$seconds,
    n_train = res$n_train %||% NA_integer_, n_val = res$n_val %||% NA_integer_
  ), class = "tv_detector")
}

#' @export
fit_history.tv_detector <- function(x, ...) x$history

#' @export
format.tv_detector <- function(x, ...) {
  h <- x$history
  best <- h[which.max(h$map50_95), ]
  c(
    paste0("Started from: ", x$model, "; ", nrow(h), " epochs at ", x$image_size, " px in ",
           round(x$seconds), " s"),
    paste0("Classes:      ", paste(x$classes, collapse = ", ")),
    paste0("Images:       ", x$n_train, " to train, ", x$n_val, " to validate"),
    if (nrow(best)) sprintf("Best epoch %d: mAP50 %.3f, mAP50-95 %.3f, precision %.3f, recall %.3f",
                            best$epoch, best$map50, best$map50_95, best$precision, best$recall),
    paste0("Weights:      ", x$weights)
  )
}

#' @export
print.tv_detector <- function(x, ...) {
  print_titled(x, "tidyvision detector")
}

#' @rdname train_detector
#' @param object A `tv_detector`: `autoplot()` draws the box loss on the
#'   training and validation images and the validation mAP50 and mAP50-95
#'   by epoch, each series with its own colour, line type and point shape
#'   (mAP50 is never below mAP50-95, and both stay visible where they meet).
#' @export
autoplot.tv_detector <- function(object, ...) {
  h <- object$history
  series <- c("train box loss", "val box loss", "mAP50", "mAP50-95")
  long <- tibble::tibble(
    epoch = rep(h$epoch, 4),
    panel = factor(rep(c("Box loss", "Box loss", "Validation mAP", "Validation mAP"), each = nrow(h)),
                   levels = c("Box loss", "Validation mAP")),
    series = factor(rep(series, each = nrow(h)), levels = series),
    value = c(h$train_box_loss, h$val_box_loss, h$map50, h$map50_95)
  )
  ggplot2::ggplot(long, ggplot2::aes(.data$epoch, .data$value, colour = .data$series,
                                     linetype = .data$series, shape = .data$series)) +
    ggplot2::geom_line(linewidth = 0.7) + ggplot2::geom_point(size = 1.8) +
    # mAP is a share: its panel always spans 0 to 1.
    ggplot2::geom_blank(data = tibble::tibble(epoch = h$epoch[1], value = 1, series = factor("mAP50", series),
                                              panel = factor("Validation mAP", levels(long$panel)))) +
    ggplot2::facet_wrap(ggplot2::vars(.data$panel), scales = "free_y") +
    # Losses and mAP are never negative: the axes start at 0.
    ggplot2::scale_y_continuous(limits = c(0, NA), expand = ggplot2::expansion(mult = c(0, 0.05))) +
    ggplot2::scale_x_continuous(breaks = function(x) unique(floor(pretty(x)))) +
    ggplot2::scale_colour_manual(values = c("#0072B2", "#E69F00", "#009E73", "#CC79A7")) +
    ggplot2::scale_linetype_manual(values = c("solid", "22", "solid", "22")) +
    ggplot2::scale_shape_manual(values = c(16, 17, 15, 4)) +
    ggplot2::labs(x = "Epoch", y = NULL, colour = NULL, linetype = NULL, shape = NULL) +
    ggplot2::theme_minimal(base_size = 11) +
    ggplot2::theme(legend.position = "bottom", plot.margin = ggplot2::margin(4, 6, 4, 4))
}
