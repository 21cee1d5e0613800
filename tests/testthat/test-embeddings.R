test_that("image_embeddings() gives one row per image, NA where unreadable, and keeps the input's columns", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))[c(1, 2, 40), ]
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not an image", bad)
  x <- rbind(imgs[c("path", "label")], tibble::tibble(path = bad, label = "animals"))
  expect_warning(emb <- image_embeddings(x, image_size = 64, verbose = FALSE),
                 class = "tidyvision_warning_unreadable")
  expect_named(emb, c("path", "label", "embedding"))
  expect_equal(dim(emb$embedding), c(4L, 1280L))
  expect_true(all(is.na(emb$embedding[4, ])))
  expect_false(anyNA(emb$embedding[1:3, ]))
  # the same image gives the same vector, from any input form
  again <- image_embeddings(imgs$path[2], image_size = 64, verbose = FALSE)
  expect_equal(again$embedding[1, ], emb$embedding[2, ])
  # nearer to itself in another class's company: cosine of the two animals > animal vs building
  cosine <- function(a, b) sum(a * b) / sqrt(sum(a^2) * sum(b^2))
  expect_gt(cosine(emb$embedding[1, ], emb$embedding[1, ]), cosine(emb$embedding[1, ], emb$embedding[3, ]))
})

test_that("a classifier embeds with its own fine-tuned body and preprocessing", {
  skip_if_no_engine()
  fit <- small_fit()
  # a folder is listed; its images are embedded in path order
  folder <- system.file("extdata", "images", "tools", package = "tidyvision")
  paths <- image_paths(folder)[1:2]
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  expect_message(emb <- image_embeddings(folder, backbone = fit, verbose = TRUE), "Embedding images")
  expect_equal(emb$path, image_files(folder)$path)
  expect_equal(ncol(emb$embedding), 1280L)
  expect_error(image_embeddings(paths, backbone = 3), class = "tidyvision_error_bad_argument")
  expect_error(image_embeddings(paths, resize = "squash"), class = "tidyvision_error_bad_argument")
})

# Augmented copies (mirrored, cropped 10% a side, re-coloured, meme band) of
# two shipped photos, with four other photos, made once.
emb_cache <- new.env()
augmented_set <- function() {
  if (is.null(emb_cache$set)) {
    photos <- system.file("extdata", "images", package = "tidyvision")
    # phash misses these two photos' meme copies (14-18 bits from their source)
    sources <- file.path(photos, c("animals/koala.jpg", "tools/screw_driver2.jpg"))
    others <- file.path(photos, c("animals/cow.jpg", "animals/lemur.jpg", "tools/hammer1.jpg",
                                  "buildings/aula_palatina.jpg"))
    root <- withr::local_tempdir(.local_envir = emb_cache)
    copies <- lapply(sources, function(p) unlist(fixtures()$augmented_copies(p, root)))
    emb_cache$set <- list(sources = sources, copies = copies, others = others)
  }
  emb_cache$set
}

test_that("augmented copies are nearer than different photos, and similar_images() returns them first", {
  skip_if_no_engine()
  s <- augmented_set()
  pool <- image_embeddings(c(s$sources, unlist(s$copies), s$others), verbose = FALSE)
  near <- similar_images(pool[1:2, ], pool, k = 4)
  expect_named(near, c("query", "path", "rank", "distance"))
  expect_equal(near$query, rep(s$sources, each = 4))
  expect_equal(near$rank, rep(1:4, 2))
  # an image is not its own neighbour; its four copies come first
  for (i in 1:2) {
    expect_setequal(near$path[near$query == s$sources[i]], s$copies[[i]])
  }
  expect_true(all(diff(near$distance[1:4]) >= 0))
  # every copy is nearer its source than any different photo is
  unit <- pool$embedding / sqrt(rowSums(pool$embedding^2))
  sim <- unit %*% t(unit)
  copy_sim <- c(sim[1, 3:6], sim[2, 7:10])
  different <- sim[c(1:2, 11:14), c(1:2, 11:14)][upper.tri(diag(6))]
  expect_gt(min(copy_sim), max(different))
  expect_equal(near$distance, 1 - c(sort(sim[1, 3:6], decreasing = TRUE), sort(sim[2, 7:10], decreasing = TRUE)),
               tolerance = 1e-5)
  # paths instead of embeddings: the same answer, from the cache
  expect_equal(similar_images(s$sources, pool$path, k = 4), near, tolerance = 1e-6)
})

test_that("a meme copy is found by method = 'embedding' and missed by phash at its default", {
  skip_if_no_engine()
  s <- augmented_set()
  meme <- vapply(s$copies, function(x) grep("_meme", x, value = TRUE), "")
  paths <- c(s$sources, meme, s$others)
  by_embedding <- find_duplicates(paths, method = "embedding", verbose = FALSE)
  expect_named(by_embedding, c("path", "group", "is_first", "distance"))
  expect_equal(by_embedding$group, c(1:2, 1:2, 3:6))
  expect_equal(by_embedding$is_first, rep(c(TRUE, FALSE, TRUE), c(2, 2, 4)))
  expect_true(all(by_embedding$distance[3:4] > 0 & by_embedding$distance[3:4] < 1 - 0.85))
  by_phash <- find_duplicates(paths, method = "phash", verbose = FALSE)
  expect_equal(by_phash$group, 1:8)
  # an embedding column is used as it is
  emb <- image_embeddings(paths, verbose = FALSE)
  expect_equal(find_duplicates(emb, method = "embedding"), by_embedding, tolerance = 1e-6)
  expect_error(find_duplicates(paths, method = "embedding", threshold = 1.5),
               class = "tidyvision_error_bad_argument")
})

test_that("method = 'embedding' holds every plain copy the hash finds (half size, JPEG q40)", {
  skip_if_no_engine()
  src <- list.files(system.file("extdata", "images", package = "tidyvision"), recursive = TRUE,
                    full.names = TRUE)[seq(1, 89, by = 9)]
  dir <- withr::local_tempdir()
  fx <- fixtures()
  copies <- unlist(lapply(seq_along(src), function(i) {
    c(fx$write_copy(src[i], file.path(dir, sprintf("%02d_half.png", i)), "half"),
      fx$write_copy(src[i], file.path(dir, sprintf("%02d_q40.jpg", i)), "jpeg40"))
  }))
  paths <- c(src, copies)
  source_of <- c(seq_along(src), rep(seq_along(src), each = 2))
  phash <- find_duplicates(paths, method = "phash", verbose = FALSE)
  semantic <- find_duplicates(paths, method = "embedding", threshold = 0.99, verbose = FALSE)
  same <- function(g) outer(g, g, "==")
  expect_true(all(same(semantic$group)[same(phash$group)]))  # a superset of the hash's pairs
  expect_equal(semantic$group, source_of)  # each copy with its source, and nothing else
})

test_that("find_duplicates(method = 'embedding') shows its progress bars", {
  skip_if_no_engine()
  s <- augmented_set()
  tidyvision:::engine_call("cache.clear", "embeddings")
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  expect_snapshot(dups <- find_duplicates(s$copies[[1]][1:3], method = "embedding", verbose = TRUE),
                  transform = scrub_progress)
  expect_equal(dups$group, c(1L, 1L, 1L))
})

test_that("similar_images() and plot_embeddings() check their input", {
  skip_if_no_engine()
  s <- augmented_set()
  emb <- image_embeddings(s$sources, verbose = FALSE)
  short <- emb
  short$embedding <- short$embedding[, 1:10]
  expect_error(similar_images(short, emb), "dimensions", class = "tidyvision_error_bad_argument")
  expect_error(similar_images(emb, k = 0), class = "tidyvision_error_bad_argument")
  expect_error(plot_embeddings(emb), class = "tidyvision_error_no_images")
  expect_error(plot_embeddings(emb, method = "tsne"), class = "tidyvision_error_bad_argument")
})

test_that("plot_embeddings() maps the shipped photos by class, with thumbnails", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  imgs <- imgs[ave(seq_along(imgs$label), imgs$label, FUN = seq_along) <= 6, ]
  emb <- image_embeddings(imgs, verbose = FALSE)
  p <- plot_embeddings(emb, color = label, thumbnails = TRUE, n_thumbnails = 5)
  expect_equal(nrow(p$data), 18)
  rasters <- vapply(p$layers, function(l) inherits(l$geom, "GeomRasterAnn"), TRUE)
  expect_equal(sum(rasters), 5)
  # the classes separate along the first two components: each point's nearest is of its class mostly
  d <- as.matrix(dist(p$data[c(".x", ".y")]))
  diag(d) <- Inf
  expect_gte(mean(p$data$.color[apply(d, 1, which.min)] == p$data$.color), 0.7)
  path <- withr::local_tempfile(fileext = ".png")
  ggplot2::ggsave(path, p, width = 7, height = 5)
  expect_true(file.size(path) > 0)
  skip_if_not_installed("uwot")
  u <- plot_embeddings(emb, color = label, method = "umap")
  expect_equal(u$labels$x, "UMAP 1")
  expect_equal(plot_embeddings(emb, color = NULL, method = "umap")$data, transform(u$data, .color = "all"),
               ignore_attr = TRUE)
})
