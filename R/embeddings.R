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
                             verbose = interactive()) {
  resize <- check_choice(resize)
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
    check_classifier(backbone, call = call)
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
