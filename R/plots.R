#' A grid of image thumbnails
#'
#' Look at the data before modelling it: a sample of images per class (or
#' per any column), one panel per class, so mislabelled, duplicated or
#' off-topic images show up. Each image is captioned with its file name and
#' framed in its class's colour ([class_colours()], the same in every plot
#' of these classes); unreadable images appear as grey tiles.
#'
#' @param images A tibble from [image_files()] or a character vector of
#'   paths.
#' @param n Images to show per panel (per value of `by`).
#' @param by A column (tidyselect) to make one panel per value of; `label`
#'   by default when there is one, `NULL` for a single panel.
#' @param size Thumbnail size in pixels (longer side); by default sharp
#'   when the plot is printed 7 inches wide at 300 dpi.
#' @param ncol Thumbnails per row within a panel; by default up to 8.
#' @param seed Random seed for which images are shown when a panel has more
#'   than `n`; they are shown in input order.
#' @param caption A caption under the plot, e.g. where the images come from.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' plot_images(imgs, n = 6)
plot_images <- function(images, n = 8, by = label, size = NULL, ncol = NULL, seed = 1,
                        caption = NULL) {
  check_count(n)
  check_seed(seed)
  check_optional_count(size)
  check_optional_count(ncol)
  check_caption(caption)
  if (!is.data.frame(images)) images <- tibble::tibble(path = image_paths(images))
  paths <- image_paths(images)
  by_quo <- rlang::enquo(by)
  if (rlang::quo_is_symbol(by_quo, name = "label") && !"label" %in% names(images)) {
    by_quo <- rlang::quo(NULL)
  }
  by_col <- select_columns(images, by_quo, "by", max = 1)
  panel <- if (length(by_col)) as.character(images[[by_col]]) else rep("", length(paths))
  panel[is.na(panel)] <- "NA"
  rows <- withr::with_seed(seed, unlist(lapply(split(seq_along(paths), panel), function(r) {
    if (length(r) > n) sort(r[sample.int(length(r), n)]) else r
  })))
  if (length(rows) == 0) {
    tv_abort("{.arg images} has no images to plot.", class = "no_images")
  }
  ncol <- ncol %||% default_columns(panel[rows], n)
  check_count(ncol)
  size <- size %||% sharp_size(ncol)
  check_count(size)
  cells <- thumbnail_cells(paths[rows], panel[rows], ncol)
  classes <- if ("label" %in% names(images)) images$label else NULL
  cells$.class <- if (is.null(classes)) NA_character_ else as.character(classes[rows])
  thumbs <- read_thumbnails(paths[rows], as.integer(size))
  p <- thumbnail_grid(cells, thumbs, ncol, facet = length(by_col) > 0)
  p <- p + class_scale(classes, "Class", shown = cells$.class, legend = !identical(by_col, "label"))
  p + ggplot2::labs(caption = wrap_caption(caption))
}

# One row per panel when there are several; a single panel fills a 7 x 5
# page (each cell is 1.25 high, with its caption).
default_columns <- function(panel, n) {
  counts <- table(panel)
  if (length(counts) > 1) return(min(n, 8, max(counts)))
  min(8L, page_columns(length(panel), aspect = 7 / 5 * 1.25))
}

# Pixels a thumbnail needs to stay sharp when the plot is printed 7 inches
# wide at 300 dpi with `ncol` images a row.
sharp_size <- function(ncol) as.integer(min(512, max(128, ceiling(7 * 300 / ncol))))

thumbnail_grid <- function(cells, thumbs, ncol, facet) {
  missing <- cells[vapply(thumbs, is.null, logical(1)), ]
  p <- ggplot2::ggplot(cells, ggplot2::aes(.data$x, .data$y)) +
    ggplot2::geom_tile(ggplot2::aes(colour = .data$.class), width = 0.98, height = 0.98,
                       fill = NA, linewidth = 0.8) +
    ggplot2::geom_tile(data = missing, width = 0.94, height = 0.94, fill = "grey80") +
    ggplot2::geom_text(data = missing, label = "can't read", size = 2.5, colour = "grey30") +
    ggplot2::geom_text(ggplot2::aes(y = .data$y - 0.52, label = .data$caption), size = 2.4, vjust = 1)
  for (i in seq_along(thumbs)) p <- p + fitted_raster(thumbs[[i]], cells[i, ])
  if (facet) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = 1)
  p + ggplot2::coord_fixed(xlim = c(0.5, ncol + 0.5), ylim = c(min(cells$y) - 0.75, 0.5),
                           expand = FALSE) +
    gallery_theme()
}

# theme_void() with room at the edges, so titles, strips and captions are
# never cut, and the caption left-aligned under the whole plot.
gallery_theme <- function() {
  ggplot2::theme_void() +
    ggplot2::theme(
      plot.margin = ggplot2::margin(8, 8, 8, 8),
      strip.text = ggplot2::element_text(face = "bold", margin = ggplot2::margin(4, 0, 4, 0)),
      plot.title = ggplot2::element_text(margin = ggplot2::margin(0, 0, 8, 0)),
      plot.title.position = "plot", plot.caption.position = "plot",
      plot.caption = ggplot2::element_text(hjust = 0, colour = "grey30", margin = ggplot2::margin(8, 0, 0, 0)),
      legend.position = "bottom"
    )
}

# A gallery of fixed-aspect cells is only as wide as its columns: so is its caption.
gallery_caption_width <- function(ncol) min(90, 30 * ncol)

wrap_caption <- function(caption, width = 90) {
  if (is.null(caption)) return(NULL)
  paste(strwrap(caption, width), collapse = "\n")
}

#' A fixed colour for each class, the same in every plot
#'
#' Every tidyvision plot that colours classes takes its colours from here,
#' so a class keeps its colour from the image grid to the error gallery.
#' Colours follow the order of `classes` (a factor's levels, otherwise the
#' sorted unique values), from the colour-blind-safe Okabe-Ito palette
#' (then an HCL palette past 8 classes). Give every class of the data, not a
#' subset, to keep the mapping stable; use the result with
#' `ggplot2::scale_colour_manual(values = )` in your own plots.
#'
#' @param classes Class labels: a factor, or a character vector.
#' @return A named character vector of colours, one per class.
#' @export
#' @examples
#' class_colours(c("tools", "animals", "buildings", "animals"))
class_colours <- function(classes) {
  if (!(is.factor(classes) && nlevels(classes) > 0) && !(is.character(classes) && any(!is.na(classes)))) {
    tv_abort(c("{.arg classes} must be class labels (a character vector or a factor), not {shown_value(classes)}.",
               i = "Give every class of the data, e.g. {.code class_colours(images$label)}."),
             class = "bad_argument")
  }
  palette_of(classes)
}

palette_of <- function(classes) {
  lv <- if (is.factor(classes)) levels(classes) else sort(unique(as.character(classes[!is.na(classes)])))
  okabe_ito <- c("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
  pal <- if (length(lv) <= length(okabe_ito)) okabe_ito else grDevices::hcl.colors(length(lv), "Dark 3")
  stats::setNames(pal[seq_along(lv)], lv)
}

# A colour scale from class_colours() of every class, keyed by the classes
# `shown`, with a legend only when it tells something: asked for, and more
# than one class shown.
class_scale <- function(classes, name, shown, legend = TRUE) {
  values <- palette_of(classes)
  keys <- intersect(names(values), shown)
  ggplot2::scale_colour_manual(values = values, name = name, na.value = NA, breaks = keys,
                               guide = if (legend && length(keys) > 1) "legend" else "none")
}

# Cell centres: the k-th image of a panel in column (k - 1) %% ncol + 1,
# rows going down with room for a caption under each image.
thumbnail_cells <- function(paths, panel, ncol) {
  k <- stats::ave(seq_along(paths), panel, FUN = seq_along)
  tibble::tibble(
    .panel = panel, x = (k - 1) %% ncol + 1, y = -((k - 1) %/% ncol) * 1.25,
    # About as many characters as fit under an image 7 / ncol inches wide.
    caption = truncate_name(basename(paths), max(8, floor(110 / ncol)))
  )
}

# A file name that fits `width` characters: too long, it loses its extension,
# then its middle, so the end that tells "tape2" from "tape3" stays.
truncate_name <- function(x, width, file = TRUE) {
  long <- nchar(x) > width
  if (file) x[long] <- tools::file_path_sans_ext(x[long])
  still <- nchar(x) > width
  head <- ceiling((width - 1) / 2)
  tail <- width - 1 - head
  x[still] <- paste0(substr(x[still], 1, head), "\u2026", substr(x[still], nchar(x[still]) - tail + 1, nchar(x[still])))
  x
}

# A raster drawn in one facet panel only (annotation_raster() draws in
# every panel), fitted into a box keeping its aspect ratio.
panel_raster <- function(raster, panel, xmin, xmax, ymin, ymax, interpolate = TRUE) {
  ggplot2::layer(
    data = tibble::tibble(.panel = panel), mapping = NULL, geom = ggplot2::GeomRasterAnn,
    stat = "identity", position = "identity", inherit.aes = FALSE, show.legend = FALSE,
    params = list(raster = raster, xmin = xmin, xmax = xmax, ymin = ymin, ymax = ymax,
                  interpolate = interpolate)
  )
}

fitted_raster <- function(raster, cell, box = 0.94) {
  if (is.null(raster)) return(NULL)
  h <- nrow(raster)
  w <- ncol(raster)
  half_w <- box / 2 * min(1, w / h)
  half_h <- box / 2 * min(1, h / w)
  panel_raster(raster, cell$.panel, cell$x - half_w, cell$x + half_w,
               cell$y - half_h, cell$y + half_h)
}

# One square panel per raster, `size` pixels wide, titled by `titles`.
square_panels <- function(rasters, titles, size, ncol) {
  titles <- factor(titles, levels = titles)
  frame <- tibble::tibble(.panel = rep(titles, each = 2), x = rep(c(0, size), length(titles)),
                          y = rep(c(0, size), length(titles)))
  p <- ggplot2::ggplot(frame, ggplot2::aes(.data$x, .data$y)) + ggplot2::geom_blank()
  for (i in seq_along(rasters)) {
    r <- rasters[[i]]
    scale <- size / max(nrow(r), ncol(r))
    w <- ncol(r) * scale
    h <- nrow(r) * scale
    p <- p + panel_raster(r, titles[i], (size - w) / 2, (size + w) / 2, (size - h) / 2,
                          (size + h) / 2, interpolate = FALSE)
  }
  p + ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = ncol) +
    ggplot2::coord_fixed(xlim = c(0, size), ylim = c(0, size), expand = FALSE) +
    gallery_theme() +
    # Titles may be wider than a small panel: drawn whole, not clipped to it.
    ggplot2::theme(strip.text = ggplot2::element_text(margin = ggplot2::margin(4, 0, 4, 0), lineheight = 0.9),
                   strip.clip = "off", panel.spacing = ggplot2::unit(6, "pt"))
}

# Columns for n square panels that fill a landscape 7 x 5 page best.
page_columns <- function(n, aspect = 7 / 5) {
  as.integer(min(n, max(1, ceiling(sqrt(n * aspect)))))
}

# As many rows as page_columns() needs, with the panels spread evenly over
# them (6 panels: 3 + 3, not 4 + 2).
balanced_columns <- function(n, aspect = 7 / 5) {
  as.integer(ceiling(n / ceiling(n / page_columns(n, aspect))))
}

array_raster <- function(a) grDevices::as.raster(a / 255)

#' How each resize strategy turns a photo into network input
#'
#' The networks take square inputs, so every image is made `size` x `size`
#' first. This draws the original next to the four strategies of
#' [fine_tune()]'s `resize` argument, as in the book's Figure 4.2:
#' `"squish"` (stretch to a square, distorting shapes), `"crop"` (the
#' central square at the original scale, losing the rest), `"pad"` (fit the
#' whole image, adding black bars) and `"rescale_crop"` (shorter side to
#' `size * 256 / 224`, then the central square: the default). The pictures
#' come from the code [fine_tune()] and [predict()][predict.tv_classifier]
#' use, so they show exactly what the model sees.
#'
#' @param path Path of one image.
#' @param size Side of the square network input, in pixels
#'   (`image_size` of [fine_tune()]).
#' @param caption A caption under the plot; by default the input size.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' photo <- system.file("extdata", "images", "animals", "giraffe.jpg", package = "tidyvision")
#' plot_resizing(photo)
plot_resizing <- function(path, size = 224, caption = NULL) {
  path <- check_image_path(path)
  check_count(size)
  check_caption(caption)
  modes <- engine_call("transforms.resize_examples", path, size = as.integer(size))
  original <- read_thumbnails(path, size = 4L * as.integer(size))[[1]]
  info <- image_info_of(path)
  titles <- c(
    sprintf("original\n%d x %d", info$width, info$height),
    "squish", "crop", "pad", "rescale + crop\n(the default)"
  )
  rasters <- c(list(original), lapply(modes[c("squish", "crop", "pad", "rescale_crop")], array_raster))
  caption <- caption %||% sprintf("Network input: %d x %d pixels.", size, size)
  square_panels(rasters, titles, size, ncol = page_columns(5)) +
    ggplot2::labs(caption = wrap_caption(caption))
}

#' Random crops and flips as training sees them
#'
#' With `augment = TRUE`, [fine_tune()] shows the network a different random
#' part of each training image every epoch (a random resized crop covering
#' 8-100% of the image, with aspect ratio 3:4 to 4:3) and flips it
#' horizontally half the time. This draws `n` such draws of one image, made
#' by the same code as training.
#'
#' @param path Path of one image.
#' @param n Number of random draws.
#' @param size Side of the square network input, in pixels.
#' @param seed Random seed of the draws.
#' @param caption A caption under the plot.
#' @return A ggplot.
#' @export
#' @examplesIf tv_available()
#' photo <- system.file("extdata", "images", "animals", "giraffe.jpg", package = "tidyvision")
#' plot_augmentation(photo, n = 8)
plot_augmentation <- function(path, n = 8, size = 224, seed = 1, caption = NULL) {
  path <- check_image_path(path)
  check_count(n)
  check_count(size)
  check_seed(seed)
  check_caption(caption)
  draws <- engine_call("transforms.augment_examples", path, n = as.integer(n),
                       size = as.integer(size), seed = as.integer(seed))
  square_panels(lapply(draws, array_raster), paste("draw", seq_len(n)), size,
                ncol = page_columns(n)) +
    ggplot2::labs(caption = wrap_caption(caption))
}

check_image_path <- function(path, arg = rlang::caller_arg(path), call = caller_env()) {
  if (!rlang::is_string(path)) {
    tv_abort("{.arg {arg}} must be the path of one image, not {.obj_type_friendly {path}}.",
             class = "bad_argument", call = call)
  }
  full <- expand_paths(path)
  if (!file.exists(full) || dir.exists(full)) {
    tv_abort(c("Can't find the image {.path {path}}.",
               i = "Check the spelling and the working directory ({.path {getwd()}})."),
             class = "path_not_found", call = call)
  }
  info <- image_info_of(full)
  if (!isTRUE(info$readable)) {
    tv_abort(c("Can't read the image {.path {path}}.", x = "{info$problem}"),
             class = "unreadable", call = call)
  }
  full
}

image_info_of <- function(path) {
  cols <- engine_call("images.image_info", list(path))
  list(width = col_of(cols$width, "int"), height = col_of(cols$height, "int"),
       readable = col_of(cols$readable, "lgl"), problem = col_of(cols$problem))
}

#' The misclassified images, most confident mistakes first
#'
#' Looking at what a classifier gets wrong is the quickest way to find
#' mislabelled images, ambiguous classes and shortcuts the model learned
#' (step 9 of the book). Each misclassified image is shown with its file
#' name, true class, predicted class and the predicted class's probability
#' (the `.pred_<class>` column, as [augment()][augment.tv_classifier]
#' adds). Mistakes are ordered by that probability, highest first (fastai's
#' "top losses"); without probability columns they keep the row order.
#'
#' Each image is framed in the colour of its true class, from
#' [class_colours()] over every class of `data` (the `.pred_<class>`
#' columns, `truth` and `estimate`), so colours match the other plots.
#'
#' With no mistakes the result is an empty plot that says so.
#'
#' @inheritParams image_metrics
#' @param truth The column with the true class.
#' @param estimate The column with the predicted class.
#' @param n The number of mistakes to show.
#' @param path The column with the image paths.
#' @param size Thumbnail size in pixels (longer side); by default sharp
#'   when the plot is printed 7 inches wide at 300 dpi.
#' @param ncol Images per row; by default up to 4.
#' @param caption A caption under the plot, e.g. which model and data.
#' @param explain `TRUE` to lay each image's Grad-CAM heatmap for the
#'   predicted class over it ([explain()][explain.tv_classifier]; needs `fit`): where the model
#'   found the evidence for its mistake. Images are then shown as the
#'   network saw them (after its resize).
#' @param fit With `explain = TRUE`, the classifier that made the
#'   predictions.
#' @param alpha With `explain = TRUE`, the heatmap's opacity where it is
#'   hottest (see [plot_explanations()]).
#' @return A ggplot. Its `data` holds the mistakes shown, in order: `path`,
#'   `truth`, `prediction`, `probability`, and `.panel`.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' # With a classifier: val <- augment(fit, imgs[imgs$split == "val", ])
#' # Here, made-up predictions in the same shape:
#' set.seed(1)
#' val <- imgs[sample(nrow(imgs), 30), ]
#' val$.pred_animals <- ifelse(val$label == "animals", 0.7, 0.2) + runif(30, -0.2, 0.25)
#' val$.pred_buildings <- (1 - val$.pred_animals) / 2
#' val$.pred_tools <- (1 - val$.pred_animals) / 2
#' val$.pred_class <- ifelse(val$.pred_animals > 0.5, "animals", "tools")
#' plot_errors(val, label, n = 8)
plot_errors <- function(data, truth, estimate = .pred_class, ..., n = 12, path = path,
                        size = NULL, ncol = NULL, caption = NULL, explain = FALSE, fit = NULL,
                        alpha = 0.5) {
  rlang::check_dots_empty()
  check_flag(explain)
  if (explain) check_classifier(fit)
  cols <- metric_columns(data, rlang::enquo(truth), rlang::enquo(estimate))
  path_col <- one_column(data, rlang::enquo(path), "path", caller_env())
  check_count(n)
  check_optional_count(size)
  check_optional_count(ncol)
  check_caption(caption)
  check_probability(alpha)
  errors <- ranked_errors(data, cols, path_col)
  if (nrow(errors) == 0) return(no_errors_plot(sum(!is.na(data[[cols$truth]]))))
  shown <- errors[seq_len(min(n, nrow(errors))), ]
  ncol <- ncol %||% balanced_columns(nrow(shown), aspect = 7 / 5 * 1.4)
  check_count(ncol)
  size <- size %||% sharp_size(ncol)
  thumbs <- if (explain) error_explanations(fit, shown, alpha) else read_thumbnails(shown$path, as.integer(size))
  p <- error_gallery(shown, thumbs, ncol, nrow(errors))
  if (explain) caption <- caption %||% HEAT_CAPTION
  p + class_scale(all_classes(data, cols), "Truth", shown = shown$truth) +
    ggplot2::labs(caption = wrap_caption(caption, gallery_caption_width(ncol)))
}

# Every class `data` knows of, so class_colours() maps them as other plots do.
all_classes <- function(data, cols) {
  from_probs <- sub("^\\.pred_", "", grep("^\\.pred_", setdiff(names(data), ".pred_class"), value = TRUE))
  truth <- data[[cols$truth]]
  if (is.factor(truth) && all(from_probs %in% levels(truth))) return(truth)
  sort(unique(c(from_probs, as.character(truth), as.character(data[[cols$estimate]]))))
}

# Misclassified rows, the most confident first.
ranked_errors <- function(data, cols, path_col) {
  truth <- as.character(data[[cols$truth]])
  prediction <- as.character(data[[cols$estimate]])
  wrong <- which(!is.na(truth) & !is.na(prediction) & truth != prediction)
  prob_cols <- paste0(".pred_", prediction[wrong])
  probability <- rep(NA_real_, length(wrong))
  for (col in intersect(unique(prob_cols), names(data))) {
    probability[prob_cols == col] <- data[[col]][wrong[prob_cols == col]]
  }
  errors <- tibble::tibble(path = expand_paths(data[[path_col]][wrong]), truth = truth[wrong],
                           prediction = prediction[wrong], probability = probability)
  errors[order(-errors$probability, na.last = TRUE), ]
}

error_gallery <- function(shown, thumbs, ncol, total) {
  image_gallery(shown, thumbs, ncol, gallery_captions(shown, ncol),
                title = sprintf("%d of %d misclassified images, most confident first", nrow(shown), total))
}

# Per panel: file name, truth (when known), the predicted (or explained)
# class and its probability.
gallery_captions <- function(shown, ncol, label = "predicted") {
  prob <- ifelse(is.na(shown$probability), "", sprintf(" (%.2f)", shown$probability))
  truth <- ifelse(is.na(shown$truth), "", sprintf("\ntruth: %s", shown$truth))
  sprintf("%s%s\n%s: %s%s", truncate_name(basename(shown$path), floor(90 / ncol)),
          truth, label, shown$prediction, prob)
}

# One captioned panel per row of `shown` (path, truth), its raster framed in
# the colour of its truth; grey tiles where a raster is NULL.
image_gallery <- function(shown, rasters, ncol, captions, title, text_size = 8) {
  shown$.panel <- factor(seq_len(nrow(shown)))
  missing <- shown[vapply(rasters, is.null, logical(1)), ]
  p <- ggplot2::ggplot(shown, ggplot2::aes(x = 0.5, y = 0.5)) +
    ggplot2::geom_tile(ggplot2::aes(colour = .data$truth), width = 0.99, height = 0.99,
                       fill = NA, linewidth = 1)
  # Facetted layers with no rows fail to draw in ggplot2 3.4.
  if (nrow(missing) > 0) {
    p <- p + ggplot2::geom_tile(data = missing, width = 0.94, height = 0.94, fill = "grey80") +
      ggplot2::geom_text(data = missing, label = "can't read", size = 3, colour = "grey30")
  }
  for (i in seq_along(rasters)) {
    p <- p + fitted_raster(rasters[[i]], tibble::tibble(.panel = shown$.panel[i], x = 0.5, y = 0.5))
  }
  p + ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = ncol,
                          labeller = ggplot2::as_labeller(rlang::set_names(captions, shown$.panel))) +
    ggplot2::coord_fixed(xlim = c(0, 1), ylim = c(0, 1), expand = FALSE) +
    ggplot2::labs(title = title) +
    gallery_theme() +
    ggplot2::theme(strip.text = ggplot2::element_text(size = text_size, hjust = 0, face = "plain",
                                                      margin = ggplot2::margin(4, 0, 4, 0)))
}

no_errors_plot <- function(n) {
  empty <- tibble::tibble(path = character(), truth = character(), prediction = character(),
                          probability = double(), .panel = factor())
  ggplot2::ggplot(empty) +
    ggplot2::annotate("text", x = 0, y = 0, label = sprintf("No misclassified images: all %d predictions are right.", n)) +
    ggplot2::theme_void()
}
