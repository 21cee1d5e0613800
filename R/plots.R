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

wrap_caption <- function(caption, width = 110) {
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
  lv <- if (is.factor(classes)) levels(classes) else sort(unique(as.character(classes[!is.na(classes)])))
  okabe_ito <- c("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
  pal <- if (length(lv) <= length(okabe_ito)) okabe_ito else grDevices::hcl.colors(length(lv), "Dark 3")
  stats::setNames(pal[seq_along(lv)], lv)
}

# A colour scale from class_colours() of every class, keyed by the classes
# `shown`, with a legend only when it tells something: asked for, and more
# than one class shown.
class_scale <- function(classes, name, shown, legend = TRUE) {
  values <- class_colours(classes)
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

truncate_name <- function(x, width) {
  long <- nchar(x) > width
  x[long] <- paste0(substr(x[long], 1, width - 3), "...")
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
    ggplot2::theme(strip.text = ggplot2::element_text(margin = ggplot2::margin(4, 0, 4, 0)),
                   panel.spacing = ggplot2::unit(6, "pt"))
}

# Columns for n square panels that fill a landscape 7 x 5 page best.
page_columns <- function(n, aspect = 7 / 5) {
  as.integer(min(n, max(1, ceiling(sqrt(n * aspect)))))
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
  modes <- engine_call("transforms.resize_examples", path, size = as.integer(size))
  original <- read_thumbnails(path, size = 4L * as.integer(size))[[1]]
  info <- image_info_of(path)
  titles <- c(
    sprintf("original (%d x %d)", info$width, info$height),
    "squish", "crop", "pad", "rescale + crop (default)"
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
