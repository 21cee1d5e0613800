# Real photo backgrounds where only a red square (64 px on 224, at a random
# position) makes the class "square": pairs of the same crop with and
# without it. A head-only fit on 36 (12 validate), shared by the tests.
square_cache <- new.env()

square_fit <- function() {
  if (is.null(square_cache$fit)) {
    root <- file.path(tempdir(), "tv-squares")
    unlink(root, recursive = TRUE)
    photos <- image_files(system.file("extdata", "images", package = "tidyvision"))$path
    cols <- fixtures()$make_square_set(as.list(photos), root, n = 48L, seed = 0L)
    sq <- tibble::tibble(path = col_of(cols$path), label = col_of(cols$label),
                         x0 = col_of(cols$x0, "int"), y0 = col_of(cols$y0, "int"))
    sq$split <- rep(c("train", "val"), c(36, 12))  # pairs stay together
    square_cache$images <- sq
    # squish at 224 leaves the 224 px images as they are: heatmap pixels are image pixels
    square_cache$fit <- fine_tune(sq, train_layers = "head", resize = "squish", epochs = 30,
                                  learning_rate = 0.05, batch_size = 8, step_size = 30, seed = 1)
  }
  square_cache$fit
}

# Per heatmap: is its maximum on the square (+-16 px), and its share of the
# heat in that area.
pointing <- function(heatmaps, x0, y0, margin = 16) {
  res <- Map(function(h, x, y) {
    rows <- max(1, y + 1 - margin):min(nrow(h), y + 64 + margin)
    cols <- max(1, x + 1 - margin):min(ncol(h), x + 64 + margin)
    top <- arrayInd(which.max(h), dim(h))
    c(hit = top[1] %in% rows && top[2] %in% cols, share = sum(h[rows, cols]) / sum(h))
  }, heatmaps, x0, y0)
  as.data.frame(do.call(rbind, res))
}

test_that("Grad-CAM puts the heat on the red square that decides the class", {
  skip_if_no_engine()
  fit <- square_fit()
  sq <- square_cache$images[square_cache$images$label == "square", ]
  ex <- explain(fit, sq, class = "square")
  expect_equal(ex$path, sq$path)
  expect_equal(unique(ex$class), "square")
  expect_true(all(vapply(ex$heatmap, function(h) identical(dim(h), c(224L, 224L)) && min(h) >= 0 && max(h) == 1,
                         logical(1))))
  game <- pointing(ex$heatmap, sq$x0, sq$y0)
  # chance: a 96 x 96 area of 224 x 224 is 18%
  expect_gte(mean(game$hit), 0.7)
  expect_gte(stats::median(game$share), 0.4)
  square_cache$explained <- ex
})

test_that("heatmaps of the same network with a re-initialised head differ (model randomisation)", {
  skip_if_no_engine()
  fit <- square_fit()
  trained <- square_cache$explained %||% explain(fit, square_cache$images[square_cache$images$label == "square", ],
                                                 class = "square")
  random <- fit
  random$weights <- fixtures()$reinit_head(fit$weights, withr::local_tempfile(fileext = ".safetensors"), seed = 7L)
  shuffled <- explain(random, trained$path, class = "square")
  rho <- unlist(Map(function(a, b) {
    if (stats::sd(a) == 0 || stats::sd(b) == 0) return(0)  # an empty map shares no ranking
    stats::cor(as.vector(a), as.vector(b), method = "spearman")
  }, trained$heatmap, shuffled$heatmap))
  expect_lt(stats::median(rho), 0.5)
})

test_that("explain() keeps the input's rows and columns, and predicted classes by default", {
  skip_if_no_engine()
  fit <- square_fit()
  imgs <- square_cache$images[c(37, 38, 39, 40), ]
  ex <- explain(fit, imgs)
  expect_named(ex, c(names(imgs), "class", "probability", "heatmap"))
  p <- predict(fit, imgs, type = "prob")
  expect_equal(ex$class, as.character(predict(fit, imgs)$.pred_class))
  expect_equal(ex$probability, pmax(p$.pred_plain, p$.pred_square), tolerance = 1e-5)
  expect_equal(attr(ex, "preprocessing"), list(resize = "squish", image_size = 224L))
})

test_that("explain() shows its progress bar", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  out <- capture.output(type = "message",
                        ex <- explain(square_fit(), square_cache$images$path[1:3], batch_size = 1, verbose = TRUE))
  expect_equal(nrow(ex), 3)
  expect_match(out, "Explaining", all = FALSE)
  expect_match(out, "100%", all = FALSE)
})

test_that("explain() writes PNG heatmaps to dir, never over existing ones without overwrite", {
  skip_if_no_engine()
  fit <- square_fit()
  dir <- withr::local_tempdir()
  paths <- square_cache$images$path[c(2, 4)]
  ex <- explain(fit, paths, dir = dir)
  expect_equal(ex$heatmap, file.path(normalizePath(dir), paste0(tools::file_path_sans_ext(basename(paths)), "_gradcam.png")))
  expect_setequal(list.files(dir), basename(ex$heatmap))
  expect_error(explain(fit, paths, dir = dir), class = "tidyvision_error_exists")
  again <- explain(fit, paths, dir = dir, overwrite = TRUE)
  expect_equal(again$heatmap, ex$heatmap)
  expect_s3_class(plot_explanations(ex), "ggplot")
})

test_that("explain() gives classed errors for unknown classes, methods and arguments", {
  skip_if_no_engine()
  fit <- square_fit()
  path <- square_cache$images$path[1]
  expect_error(explain(fit, path, class = "circle"), class = "tidyvision_error_unknown_class")
  expect_error(explain(fit, path, class = c("square", "plain", "square")), class = "tidyvision_error_bad_argument")
  expect_error(explain(fit, path, method = "saliency"), class = "tidyvision_error_bad_argument")
  expect_error(explain(fit, path, sise = 3), class = "tidyvision_error_bad_argument")
  expect_snapshot(explain(fit, path, class = "circle"), error = TRUE)
})

test_that("plot_explanations() and plot_errors(explain = TRUE) draw heatmaps over the images", {
  skip_if_no_engine()
  fit <- square_fit()
  ex <- explain(fit, square_cache$images[37:42, ])
  p <- plot_explanations(ex, n = 4, alpha = 0.6)
  expect_s3_class(p, "ggplot")
  expect_equal(nlevels(ggplot2::ggplot_build(p)$layout$layout$PANEL), 4)
  expect_s3_class(grob_of(p), "gtable")
  expect_error(plot_explanations(ex, alpha = 2), class = "tidyvision_error_bad_argument")
  expect_error(plot_explanations(ex[1:3]), class = "tidyvision_error_bad_argument")

  val <- augment(fit, square_cache$images[37:48, ])
  val$label[1:2] <- rev(val$label[1:2])  # two certain mistakes
  p <- plot_errors(val, label, explain = TRUE, fit = fit)
  expect_true(nrow(p$data) >= 2)
  expect_s3_class(grob_of(p), "gtable")
  expect_error(plot_errors(val, label, explain = TRUE), class = "tidyvision_error_bad_argument")
})

test_that("the overlay blends heat into the image in grey, leaving cold pixels untouched", {
  image <- array(128, c(2, 2, 3))
  heat <- matrix(c(0, 1, 0, 0.5), 2)
  r <- heat_overlay(image, heat, alpha = 0.5)
  expect_equal(dim(r), c(2L, 2L))
  expect_equal(as.vector(r[1, 1]), grDevices::rgb(128, 128, 128, maxColorValue = 255))
  expect_equal(as.vector(r[1, 2]), as.vector(r[1, 1]))  # heat 0 too
  expect_false(as.vector(r[2, 1]) == as.vector(r[1, 1]))  # heat 1
  # A colour photo goes grey under the heat, so the heat's colours show on any photo.
  green <- array(c(0, 200, 0), c(1, 1, 3))[rep(1, 2), rep(1, 2), ]
  cold <- grDevices::col2rgb(as.vector(heat_overlay(green, matrix(0, 2, 2), alpha = 0.5)[1, 1]))
  expect_equal(as.vector(cold), rep(round(0.587 * 200), 3), tolerance = 1)
})

test_that("EfficientNet-Lite1 and Lite2 fine-tune offline on the example photos, above chance", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  imgs <- imgs[stats::ave(seq_len(nrow(imgs)), imgs$label, FUN = seq_along) <= 12, ]  # 12 a class
  expect_true(all(c("efficientnet_lite1", "efficientnet_lite2") %in% tv_config()$backbones_offline))
  native <- c(efficientnet_lite1 = 240, efficientnet_lite2 = 260)
  for (backbone in names(native)) {
    fit <- fine_tune(imgs, backbone = backbone, train_layers = "head", image_size = native[[backbone]],
                     epochs = 5, learning_rate = 0.01, seed = 1)
    expect_equal(fit$backbone, backbone)
    expect_gt(best_val_row(fit)$accuracy, 0.6)  # chance is 1/3
  }
})
