#' Image embeddings
#'
#' The pooled features of a pretrained backbone (or of a fitted classifier's
#' own body): one vector per image that places similar-looking images near
#' each other. Each image's vector is computed once per session for a given
#' model and file content, and kept in the engine's cache (see [tv_cache()]),
#' so similar images, semantic duplicates, label issues and active learning
#' never decode an image twice.
#'
#' @param images A folder, a character vector of image paths, or a data
#'   frame with a `path` column (such as [image_files()]).
#' @param backbone A backbone name (`"efficientnet_lite0"` works offline) or
#'   a `tv_classifier`, whose fine-tuned body then gives the embedding.
#' @param image_size,resize Preprocessing for a backbone name; a classifier
#'   uses its own.
#' @param batch_size Images per forward pass.
#' @param verbose Show a progress bar.
#' @return `images` as a tibble (a `path` column for a folder or vector) with
#'   an `embedding` matrix column (one row per image, one column per feature).
#'   Unreadable images get a row of `NA` and one warning.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' emb <- image_embeddings(imgs[1:4, ])
#' dim(emb$embedding)
image_embeddings <- function(images, backbone = "efficientnet_lite0", image_size = 224,
                             resize = c("rescale_crop", "squish", "crop", "pad"), batch_size = 64,
                             verbose = tv_verbose()) {
  resize <- check_choice(resize)
  check_flag(verbose)
  out <- if (is.data.frame(images)) tibble::as_tibble(images) else tibble::tibble(path = image_paths(images))
  paths <- image_paths(out)
  out$embedding <- embed_paths(paths, backbone, image_size = image_size, resize = resize,
                                    batch_size = batch_size, verbose = verbose)
  out
}

# The embeddings of `paths` as a numeric matrix (NA rows where unreadable).
embed_paths <- function(paths, backbone = "efficientnet_lite0", image_size = 224,
                             resize = "rescale_crop", batch_size = 64, verbose = FALSE,
                             call = caller_env()) {
  check_count(batch_size, call = call)
  args <- c(list("embeddings.embed", as.list(paths)), embedding_model(backbone, image_size, resize, call),
            list(batch_size = as.integer(batch_size), call = call,
                 progress = progress_callback(verbose, "Embedding images")))
  res <- do.call(engine_call, args)
  problems <- col_of(res$problem)
  warn_unreadable(paths, problems, "{?its/their} embeddings are NA")
  emb <- res$embedding
  if (!is.matrix(emb)) emb <- matrix(emb, nrow = length(paths))
  emb[!is.na(problems), ] <- NA_real_
  emb
}

# The engine's arguments for a backbone name or a fitted classifier.
embedding_model <- function(backbone, image_size, resize, call) {
  if (inherits(backbone, "tv_classifier")) {
    backbone <- check_classifier(backbone, call = call)
    s <- backbone$settings
    return(list(backbone = backbone$backbone, weights_path = backbone$weights,
                n_classes = length(backbone$classes), resize = s$resize,
                image_size = as.integer(s$image_size), device = s$device, precision = s$precision))
  }
  if (!is.character(backbone) || length(backbone) != 1 || is.na(backbone) || !nzchar(backbone)) {
    tv_abort("{.arg backbone} must be a backbone name or a classifier from {.fn fine_tune}, not {shown_value(backbone)}.",
             class = "bad_argument", call = call)
  }
  check_count(image_size, call = call)
  list(backbone = backbone, resize = resize, image_size = as.integer(image_size))
}

# Paths of `x`, with its embedding matrix for the engine when it has one
# (image_embeddings() output), so nothing is embedded twice.
embedding_input <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  paths <- image_paths(x, arg = arg, call = call)
  has <- is.data.frame(x) && is.matrix(x[["embedding"]])
  list(paths = paths, embedding = if (has) py_array(x$embedding))
}

#' Find the most similar images
#'
#' For each query image, the `k` images of `pool` whose embeddings (see
#' [image_embeddings()]) are nearest by cosine similarity: other shots of
#' the same scene, the same meme template, re-framed or re-coloured copies.
#' Useful to explore a corpus before labelling, or to find more examples
#' like one you care about.
#'
#' Embedding columns are reused when `query` or `pool` come from
#' [image_embeddings()]; other images are embedded with `backbone` (cached
#' per file for the session, so asking again is quick). Similarities are
#' computed in the engine in blocks of 2,048 query images, never all pairs
#' at once. An image is never its own neighbour (same path); an identical
#' copy under another name is, at distance 0. Images that can't be read get
#' no neighbours and are never one.
#'
#' @param query Images to find neighbours for: a folder, paths, a data frame
#'   with a `path` column, or [image_embeddings()] output.
#' @param pool Images to search, in the same forms; by default `query`
#'   itself (each image's nearest other images).
#' @param k Neighbours per query image.
#' @inheritParams image_embeddings
#' @return A tibble with one row per query image and neighbour, nearest
#'   first: `query` (its path), `path` (the neighbour's), `rank` (1 =
#'   nearest) and `distance` (1 - cosine similarity: 0 for the same
#'   picture, about 0.75 for unrelated photos with EfficientNet-Lite0).
#' @seealso [find_duplicates()] with `method = "embedding"` for groups of
#'   near-copies; [plot_images()] to look at the neighbours.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' emb <- image_embeddings(imgs[imgs$label == "tools", ])
#' similar_images(emb[1, ], emb, k = 3)
similar_images <- function(query, pool = query, k = 5, backbone = "efficientnet_lite0",
                           batch_size = 64, verbose = tv_verbose()) {
  check_count(k)
  check_count(batch_size)
  check_flag(verbose)
  q <- embedding_input(query)
  p <- embedding_input(pool)
  self <- match(q$paths, p$paths)
  args <- c(list("embeddings.similar", as.list(q$paths), as.list(p$paths), k = as.integer(k),
                 exclude = as.list(ifelse(is.na(self), -1L, self - 1L)),
                 query_embedding = q$embedding, pool_embedding = p$embedding),
            embedding_model(backbone, 224, "rescale_crop", caller_env()),
            list(batch_size = as.integer(batch_size), progress = progress_callback(verbose, "Embedding images")))
  res <- do.call(engine_call, args)
  warn_unreadable(q$paths, col_of(res$query_problem), "{?it has/they have} no neighbours")
  if (!identical(p$paths, q$paths)) {
    warn_unreadable(p$paths, col_of(res$pool_problem), "{?it is/they are} nobody's neighbour")
  }
  tibble::tibble(query = q$paths[res$query], path = p$paths[res$neighbour],
                 rank = as.integer(res$rank), distance = as.double(res$distance))
}

#' Map images by their embeddings
#'
#' A 2-D map of a collection in which images that look alike sit together:
#' the first two principal components of the embeddings (`"pca"`, with
#' [stats::prcomp()]) or a UMAP layout (`"umap"`, with the uwot package,
#' which keeps neighbourhoods rather than large distances; cosine metric).
#' Colour by a label to see whether the classes separate before training
#' anything, and ask for thumbnails to see what a cluster holds.
#'
#' @param x Images: [image_embeddings()] output (its `embedding` column is
#'   used), or anything [image_embeddings()] takes, which is then embedded
#'   with `backbone`.
#' @param color A column of `x` (bare name) to colour points by, e.g.
#'   `label` (the default, when `x` has it); `NULL` for one colour.
#' @param method `"pca"` or `"umap"`.
#' @param thumbnails Draw thumbnails of some images at their place.
#' @param n_thumbnails How many thumbnails (spread over the map: each next
#'   one is the image farthest from those already drawn).
#' @param seed Seed for UMAP (the global random number generator is left
#'   untouched).
#' @inheritParams image_embeddings
#' @return A ggplot; images that can't be read are left out.
#' @export
#' @examplesIf tv_available()
#' imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
#' emb <- image_embeddings(imgs)
#' plot_embeddings(emb, color = label)
#' plot_embeddings(emb, color = label, thumbnails = TRUE, n_thumbnails = 20)
plot_embeddings <- function(x, color = label, method = c("pca", "umap"), thumbnails = FALSE,
                            n_thumbnails = 30, seed = 1, backbone = "efficientnet_lite0",
                            verbose = tv_verbose()) {
  method <- check_choice(method)
  check_flag(thumbnails)
  check_count(n_thumbnails)
  check_seed(seed)
  check_flag(verbose)
  if (!(is.data.frame(x) && is.matrix(x[["embedding"]]))) {
    x <- image_embeddings(x, backbone = backbone, verbose = verbose)
  }
  color <- rlang::enquo(color)
  # the default colours by `label` when there is one (image_files() has it)
  no_label <- rlang::quo_is_symbol(color, name = "label") && !"label" %in% names(x)
  color_col <- if (no_label) character() else select_columns(x, color, "color", max = 1)
  x <- x[stats::complete.cases(x$embedding), , drop = FALSE]
  if (nrow(x) < 3) {
    tv_abort("{.arg x} has {nrow(x)} image{?s} with an embedding; a map needs at least 3.",
             class = "no_images")
  }
  map <- embedding_map(x$embedding, method, seed)
  points <- tibble::tibble(.x = map$xy[, 1], .y = map$xy[, 2],
                           .color = if (length(color_col)) x[[color_col]] else "all")
  p <- ggplot2::ggplot(points, ggplot2::aes(.data$.x, .data$.y, colour = as.character(.data$.color))) +
    ggplot2::geom_point(size = 2, alpha = 0.8) +
    ggplot2::scale_colour_manual(values = palette_of(as.character(points$.color)),
                                 guide = if (length(color_col)) "legend" else "none") +
    ggplot2::labs(x = map$axes[1], y = map$axes[2], colour = if (length(color_col)) color_col,
                  title = paste(nrow(x), "images by their embeddings")) +
    ggplot2::theme_minimal()
  if (thumbnails) p <- p + map_thumbnails(x$path, points, n_thumbnails)
  p
}

# Two coordinates per row, and the axis titles.
embedding_map <- function(emb, method, seed) {
  if (method == "pca") {
    pca <- stats::prcomp(emb, rank. = 2)
    share <- round(100 * pca$sdev[1:2]^2 / sum(pca$sdev^2))
    return(list(xy = pca$x[, 1:2], axes = sprintf("PC%d (%d%% of variance)", 1:2, share)))
  }
  rlang::check_installed("uwot", "to draw a UMAP map.")
  xy <- withr::with_seed(seed, uwot::umap(emb, n_neighbors = min(15L, nrow(emb) - 1L),
                                          metric = "cosine", n_threads = 1))
  list(xy = xy, axes = c("UMAP 1", "UMAP 2"))
}

# Thumbnails of `n` images spread over the map (farthest-point order from
# the most central image), each about a twelfth of the map wide, framed in
# its point's colour.
map_thumbnails <- function(paths, points, n) {
  xy <- cbind(points$.x, points$.y)
  span <- apply(xy, 2, function(v) diff(range(v)))
  scaled <- sweep(xy, 2, span, "/")
  sq_dist <- function(i) rowSums(sweep(scaled, 2, scaled[i, ])^2)
  pick <- which.min(rowSums(sweep(scaled, 2, colMeans(scaled))^2))
  dist <- sq_dist(pick)
  while (length(pick) < min(n, nrow(xy))) {
    pick <- c(pick, which.max(dist))
    dist <- pmin(dist, sq_dist(utils::tail(pick, 1)))
  }
  rasters <- read_thumbnails(paths[pick], size = 96L)
  aspect <- vapply(rasters, function(r) if (is.null(r)) NA_real_ else ncol(r) / nrow(r), 1)
  boxes <- tibble::tibble(.x = xy[pick, 1], .y = xy[pick, 2], .color = points$.color[pick],
                          w = span[1] / 24 * pmin(1, aspect), h = span[2] / 24 * pmin(1, 1 / aspect))
  boxes <- boxes[!is.na(aspect), ]
  c(list(ggplot2::geom_rect(ggplot2::aes(xmin = .data$.x - .data$w, xmax = .data$.x + .data$w,
                                         ymin = .data$.y - .data$h, ymax = .data$.y + .data$h),
                            data = boxes, fill = NA, linewidth = 1.2, show.legend = FALSE)),
    Map(function(r, b) ggplot2::annotation_raster(r, b$.x - b$w, b$.x + b$w, b$.y - b$h, b$.y + b$h),
        rasters[!is.na(aspect)], split(boxes, seq_len(nrow(boxes)))))
}
