# Images with labelled boxes, one panel each: what plot_detections() and
# plot_faces() draw for a person to check a detector's work.

# The file name, and a note on a second line so narrow panels don't cut it.
panel_titles <- function(paths, notes = NULL) {
  titles <- truncate_name(basename(paths), 24)
  if (anyDuplicated(titles)) titles <- paste0(seq_along(paths), ". ", titles)
  if (!is.null(notes)) titles <- paste0(titles, "\n", notes)
  titles
}

# One panel per image in `paths`, the image fitted in a panel of the images'
# median shape (so a ggsave()d figure has little blank space); `boxes` has
# `path`, `class`, `label` and the box in pixels of images `sizes` wide/high;
# colours come from class_colours() of `classes` (every class of the data,
# so figures drawn from one table colour a class alike).
draw_boxes <- function(paths, boxes, sizes, titles, size, ncol, caption, classes = boxes$class,
                       call = caller_env()) {
  check_optional_count(ncol, call = call)
  check_caption(caption, call = call)
  thumbs <- read_thumbnails(paths, as.integer(size))
  sizes <- fill_sizes(sizes, thumbs)
  ratio <- stats::median(sizes$height / sizes$width)
  fit <- fitted_frames(sizes, ratio)
  panels <- factor(titles, levels = unique(titles))
  p <- ggplot2::ggplot(tibble::tibble(.panel = panels, x = 0, y = 0), ggplot2::aes(.data$x, .data$y)) +
    ggplot2::geom_blank()
  for (i in seq_along(thumbs)) p <- p + thumb_layer(thumbs[[i]], panels[i], fit[i, ], size)
  if (nrow(boxes) > 0) p <- p + box_layers(panel_boxes(boxes, paths, panels, fit), ratio, classes)
  ncol <- ncol %||% best_ncol(length(paths), ratio)
  p + ggplot2::facet_wrap(ggplot2::vars(.data$.panel), ncol = ncol) +
    ggplot2::coord_fixed(xlim = c(0, 1), ylim = c(0, ratio), expand = FALSE) +
    ggplot2::labs(colour = NULL, caption = wrap_caption(caption)) +
    box_theme()
}

# Columns that make the panels largest on a 7 x 5 inch figure: tall images
# go in one row, wide ones in one column.
best_ncol <- function(n, ratio, width = 7, height = 4.4) {
  cols <- seq_len(min(n, 6))
  side <- pmin(width / cols, height / (ceiling(n / cols) * ratio))
  cols[which.max(side)]
}

# Displayed sizes: as given, else the thumbnail's (which keeps the shape).
fill_sizes <- function(sizes, thumbs) {
  tw <- vapply(thumbs, function(t) if (is.null(t)) 1 else ncol(t), numeric(1))
  th <- vapply(thumbs, function(t) if (is.null(t)) 1 else nrow(t), numeric(1))
  list(width = ifelse(is.na(sizes$width), tw, sizes$width),
       height = ifelse(is.na(sizes$height), th, sizes$height))
}

# Where each image sits in its 1 x ratio panel (y up), centred.
fitted_frames <- function(sizes, ratio) {
  s <- pmin(1 / sizes$width, ratio / sizes$height)
  w <- sizes$width * s
  h <- sizes$height * s
  tibble::tibble(x0 = (1 - w) / 2, y0 = (ratio - h) / 2, w = w, h = h, scale = s)
}

# Thumbnails smaller than asked for are enlarged: as crisp pixels, not blurred.
thumb_layer <- function(thumb, panel, frame, size) {
  if (is.null(thumb)) {
    return(ggplot2::geom_text(data = tibble::tibble(.panel = panel, x = 0.5, y = frame$y0 + frame$h / 2),
                              label = "can't read", colour = "grey30"))
  }
  panel_raster(thumb, panel, frame$x0, frame$x0 + frame$w, frame$y0, frame$y0 + frame$h,
               interpolate = max(dim(thumb)) >= size)
}

panel_boxes <- function(boxes, paths, panels, fit) {
  i <- match(boxes$path, paths)
  f <- fit[i, ]
  tibble::tibble(
    .panel = panels[i], class = as.character(boxes$class), label = boxes$label,
    xmin = f$x0 + boxes$xmin * f$scale, xmax = f$x0 + boxes$xmax * f$scale,
    ymin = f$y0 + f$h - boxes$ymax * f$scale, ymax = f$y0 + f$h - boxes$ymin * f$scale
  )
}

# Boxes and their labels; ggrepel keeps labels of crowded boxes apart. The
# colour legend only appears when it tells classes apart.
box_layers <- function(b, ratio, classes) {
  colours <- palette_of(c(classes, b$class))
  list(
    ggplot2::geom_rect(data = b, ggplot2::aes(xmin = .data$xmin, xmax = .data$xmax, ymin = .data$ymin,
                                              ymax = .data$ymax, colour = .data$class),
                       fill = NA, linewidth = 0.6, inherit.aes = FALSE),
    ggrepel::geom_label_repel(
      data = b, ggplot2::aes(x = .data$xmin, y = .data$ymax, label = .data$label, fill = .data$class),
      hjust = 0, vjust = 0, nudge_y = 0.01 * ratio, colour = "white", size = 2.4, label.size = 0, label.padding = ggplot2::unit(1.2, "pt"),
      box.padding = ggplot2::unit(1.5, "pt"), min.segment.length = 0, segment.colour = "grey20",
      max.overlaps = Inf, seed = 1, inherit.aes = FALSE, show.legend = FALSE
    ),
    ggplot2::scale_colour_manual(values = colours, breaks = intersect(names(colours), b$class),
                                 guide = if (length(unique(b$class)) > 1) "legend" else "none"),
    ggplot2::scale_fill_manual(values = colours, guide = "none")
  )
}

box_theme <- function() {
  ggplot2::theme_void(base_size = 10) +
    ggplot2::theme(
      # Room under the second line (e.g. "0 faces"), so it never touches the image.
      strip.text = ggplot2::element_text(size = 8.5, lineheight = 1.05, margin = ggplot2::margin(2, 0, 6, 0)),
      panel.spacing = ggplot2::unit(4, "pt"), legend.position = "bottom",
      plot.margin = ggplot2::margin(4, 4, 4, 4),
      plot.caption = ggplot2::element_text(hjust = 0, size = 8.5, margin = ggplot2::margin(6, 0, 0, 0)),
      plot.caption.position = "plot"
    )
}
