#' What the classifier looks at: Grad-CAM heatmaps
#'
#' For each image, where the classifier found the evidence for a class: the
#' Grad-CAM of Selvaraju et al. (2017), computed by captum's `LayerGradCam`
#' (with `relu_attributions = TRUE`) over the last convolutional stage of the
#' backbone, and upsampled bilinearly with `LayerAttribution.interpolate`.
#' The stage is found by running the network: `layer4` in the ResNets, the
#' head convolution (after its batch norm) in EfficientNet-Lite. Use it to
#' check that a model learned the objects and not a shortcut (the snow behind
#' the wolves).
#'
#' Each heatmap is a matrix of the *network input*: the `image_size` x
#' `image_size` picture the classifier sees after its `resize` (for the
#' default `"rescale_crop"`, the central square of the image scaled to a
#' shorter side of `image_size * 256 / 224`; see [plot_resizing()]). Row 1
#' is the top of that picture. Values run from 0 (no evidence) to 1 (the
#' strongest evidence in this image): each map is divided by its own maximum,
#' so maps show where, not how much, and are not comparable in level across
#' images. A map with no positive evidence for the class is all 0.
#'
#' Images are decoded in threads while the network runs on the previous
#' batch, in bf16 where it measured faster on this CPU (see [tv_config()]). Explaining
#' costs about two forward passes per image.
#'
#' @param x A `tv_classifier` from [fine_tune()] or [load_classifier()].
#' @param images A folder, image paths, or a data frame with a `path` column
#'   (such as [image_files()] or [augment()][augment.tv_classifier] output).
#' @param class `NULL` to explain each image's predicted class, or a class
#'   name (one for all images, or one per image).
#' @param method `"gradcam"`, the only method so far.
#' @param batch_size Images decoded together; on a CPU the network takes 8
#'   at a time, as [predict()][predict.tv_classifier] does.
#' @param dir `NULL` to return the heatmaps as matrices, or a folder to write
#'   each as a greyscale PNG (`<file name>_gradcam.png`, 0-255 for 0-1, at
#'   the network input size) instead: for many images, where matrices would
#'   fill the memory (a 224 x 224 map is 400 KB in R). Files are written
#'   atomically.
#' @param overwrite Replace PNGs already in `dir`.
#' @param verbose Show a progress bar.
#' @param ... Not used.
#' @return A tibble: the columns of `images` (or just `path`), then `class`
#'   (the class explained), `probability` (the classifier's probability of
#'   that class) and `heatmap`: a list of numeric matrices, or with `dir`
#'   the PNG paths. Unreadable images get `NA` (and `NULL` heatmaps) and one
#'   warning. Draw it with [plot_explanations()].
#' @references Selvaraju, R. R. et al. (2017). Grad-CAM: Visual explanations
#'   from deep networks via gradient-based localization. ICCV.
#' @method explain tv_classifier
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' ex <- explain(fit, imgs[c(1, 40, 80), ])
#' ex[c("path", "class", "probability")]
#' dim(ex$heatmap[[1]])
#' plot_explanations(ex)
explain.tv_classifier <- function(x, images, class = NULL, method = "gradcam", batch_size = 64,
                                  dir = NULL, overwrite = FALSE, verbose = tv_verbose(), ...) {
  check_dots_known(rlang::enquos(...), setdiff(names(formals(explain.tv_classifier)), "..."), "explain")
  x <- check_classifier(x)
  method <- check_choice(method, "gradcam")
  check_count(batch_size)
  check_flag(overwrite)
  check_flag(verbose)
  out <- if (is.data.frame(images)) tibble::as_tibble(images) else tibble::tibble(path = image_paths(images))
  paths <- image_paths(out, "images")
  targets <- explain_targets(class, x$classes, length(paths))
  files <- if (!is.null(dir)) heatmap_files(paths, dir, overwrite)
  s <- x$settings
  res <- engine_call("explain.explain", as.list(paths), x$weights, x$backbone, length(x$classes),
                     targets = targets, method = method, resize = s$resize,
                     image_size = as.integer(s$image_size), device = s$device, precision = s$precision,
                     batch_size = as.integer(batch_size), files = if (!is.null(files)) as.list(files),
                     progress = progress_callback(verbose, "Explaining"))
  problems <- col_of(res$problem)
  warn_unreadable(paths, problems, "{?it has/they have} no heatmap")
  out <- out[setdiff(names(out), c("class", "probability", "heatmap"))]
  out$class <- x$classes[col_of(res$class_index, "int") + 1L]
  out$probability <- col_of(res$probability, "dbl")
  out$heatmap <- if (is.null(files)) heatmap_list(res$heatmap, problems) else col_of(res$file)
  structure(out, preprocessing = list(resize = s$resize, image_size = as.integer(s$image_size)),
            explained = if (is.null(class)) "predicted" else "named", classes = x$classes)
}

# 0-based class indices for the engine (NULL: each image's prediction).
explain_targets <- function(class, classes, n, call = caller_env()) {
  if (is.null(class)) return(NULL)
  if (is.factor(class)) class <- as.character(class)
  if (!is.character(class) || !length(class) %in% c(1, n) || anyNA(class)) {
    tv_abort("{.arg class} must be {.code NULL}, one class name, or one per image ({n}), not {.obj_type_friendly {class}}.",
             class = "bad_argument", call = call)
  }
  unknown <- setdiff(class, classes)
  if (length(unknown)) {
    tv_abort(c("The classifier has no class{?es} {.val {unknown}}.", i = "Its classes are {.val {classes}}."),
             class = "unknown_class", call = call)
  }
  as.list(rep_len(match(class, classes) - 1L, n))
}

# One PNG per image in `dir`, named after the image (made unique); an
# existing file is an error unless `overwrite`.
heatmap_files <- function(paths, dir, overwrite, call = caller_env()) {
  if (!rlang::is_string(dir)) {
    tv_abort("{.arg dir} must be one folder path, not {.obj_type_friendly {dir}}.", class = "bad_argument", call = call)
  }
  if (!dir.exists(dir) && !dir.create(dir, showWarnings = FALSE, recursive = TRUE)) abort_not_writable(dir, call)
  stems <- make.unique(tools::file_path_sans_ext(basename(paths)), sep = "_")
  files <- file.path(expand_paths(dir), paste0(stems, "_gradcam.png"))
  there <- files[file.exists(files)]
  if (length(there) && !overwrite) {
    tv_abort(c("{length(there)} heatmap file{?s} already exist{?s/} in {.path {dir}}:", bullets_of(basename(there)),
               i = "Use {.code overwrite = TRUE} to replace them, or another {.arg dir}."),
             class = "exists", call = call)
  }
  files
}

# The engine's (n, size, size) array as a list of matrices; NULL where unreadable.
heatmap_list <- function(arr, problems) {
  lapply(seq_along(problems), function(i) if (is.na(problems[i])) arr[i, , ] else NULL)
}

#' Draw images with their Grad-CAM heatmaps
#'
#' Each image as the network saw it (after its resize, see [explain()][explain.tv_classifier]) with
#' the heatmap laid over it: the hotter (darker red) a part, the more the
#' class was decided there. Each panel is titled with the file name, the true
#' class when `images` had one, the class explained (the prediction, unless
#' [explain()][explain.tv_classifier] was given `class`) and its probability, and framed in the
#' true class's colour ([class_colours()]).
#'
#' @param x The result of [explain()][explain.tv_classifier].
#' @param n The number of images to show (the first `n` rows).
#' @param alpha The heatmap's opacity where it is hottest, from 0 (only the
#'   image) to 1; cooler parts are more transparent, so cold regions show
#'   the image as it is.
#' @param truth The column with the true class; `label` by default when
#'   there is one, `NULL` for none.
#' @param ncol Images per row; by default up to 6 (two rows of 6 fill a
#'   7 x 5 inch page best).
#' @param caption A caption under the plot.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' fit <- fine_tune(imgs, epochs = 2, train_layers = "head")
#' plot_explanations(explain(fit, imgs[c(1, 2, 40, 41, 80, 81), ]))
plot_explanations <- function(x, n = 12, alpha = 0.5, truth = label, ncol = NULL, caption = NULL) {
  check_explanations(x)
  check_count(n)
  check_probability(alpha)
  check_optional_count(ncol)
  check_caption(caption)
  truth_quo <- rlang::enquo(truth)
  if (rlang::quo_is_symbol(truth_quo, name = "label") && !"label" %in% names(x)) truth_quo <- rlang::quo(NULL)
  truth_col <- select_columns(x, truth_quo, "truth", max = 1)
  shown <- x[seq_len(min(n, nrow(x))), ]
  panels <- tibble::tibble(
    path = shown$path, truth = if (length(truth_col)) as.character(shown[[truth_col]]) else NA_character_,
    prediction = shown$class, probability = shown$probability
  )
  ncol <- ncol %||% balanced_columns(nrow(panels), aspect = 7 / 5 * 1.4)
  check_count(ncol)
  pre <- attr(x, "preprocessing") %||% list(resize = "rescale_crop", image_size = NULL)
  rasters <- explanation_rasters(shown$path, shown$heatmap, pre$resize, alpha)
  label <- if (identical(attr(x, "explained"), "named")) "class" else "pred"
  p <- image_gallery(panels, rasters, ncol, gallery_captions(panels, ncol, label),
                     title = "Grad-CAM: where the model found the evidence", text_size = 7)
  classes <- attr(x, "classes") %||% sort(unique(c(panels$truth, panels$prediction)))
  p + class_scale(classes, "Truth", shown = panels$truth, legend = FALSE) +
    ggplot2::labs(caption = wrap_caption(caption %||% HEAT_CAPTION, gallery_caption_width(ncol)))
}

HEAT_CAPTION <- "Grad-CAM heat over the network input in grey: from purple (little evidence for the class) to yellow (the most)."

check_explanations <- function(x, call = caller_env()) {
  if (!is.data.frame(x) || !all(c("path", "class", "probability", "heatmap") %in% names(x))) {
    tv_abort(c("{.arg x} must be the result of {.fn explain}.",
               i = "It needs the columns {.field path}, {.field class}, {.field probability} and {.field heatmap}."),
             class = "bad_argument", call = call)
  }
}

# The network inputs of `paths` with `heatmaps` (matrices, or PNG paths
# from explain(dir =)) laid over them: one R raster each, NULL where either
# is missing. The one overlay of explanations and the error gallery.
explanation_rasters <- function(paths, heatmaps, resize, alpha) {
  if (is.character(heatmaps)) {
    ok <- !is.na(heatmaps)
    read <- engine_call("explain.read_heatmaps", as.list(heatmaps[ok]))
    heatmaps <- vector("list", length(paths))
    heatmaps[ok] <- read
  }
  size <- max(0L, vapply(heatmaps, NROW, integer(1)))
  inputs <- engine_call("explain.network_inputs", as.list(paths), resize = resize, image_size = size)
  Map(function(image, heat) if (is.null(image) || is.null(heat)) NULL else heat_overlay(image, heat, alpha),
      inputs, heatmaps)
}

# An image (h x w x 3, 0-255) with a heatmap (h x w, 0-1) blended over it,
# from pale yellow to dark red, with opacity `alpha * sqrt(heat)`: cold parts
# show the image untouched, and the square root keeps middling heat visible.
# The photo in grey, so that the heat's colours stand out on any photo (on
# green grass a yellow-red heat over full colour was barely visible), with
# the heat laid over it more opaquely where it is stronger; cold pixels stay grey.
heat_overlay <- function(image, heat, alpha) {
  palette <- grDevices::col2rgb(grDevices::hcl.colors(256, "Inferno")) / 255
  colour <- palette[, pmin(256L, as.integer(heat * 255) + 1L), drop = FALSE]
  weight <- alpha * sqrt(as.vector(heat))
  grey <- (0.299 * image[, , 1] + 0.587 * image[, , 2] + 0.114 * image[, , 3]) / 255
  blend <- function(k) pmin(1, (1 - weight) * as.vector(grey) + weight * colour[k, ])
  out <- grDevices::rgb(blend(1), blend(2), blend(3))
  grDevices::as.raster(matrix(out, nrow = nrow(heat)))
}

# plot_errors(explain = TRUE): each mistake's network input with the heatmap
# of its predicted class.
error_explanations <- function(fit, shown, alpha) {
  ex <- suppressWarnings(explain(fit, shown$path, class = shown$prediction, verbose = FALSE),
                         classes = "tidyvision_warning_unreadable")
  explanation_rasters(ex$path, ex$heatmap, fit$settings$resize, alpha)
}
