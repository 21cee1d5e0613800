extdata_photo <- function(name = "crab.jpg") {
  test_path("..", "..", "inst", "extdata", "images", "animals", name)
}

# The rasters a plot draws, named by panel.
plot_rasters <- function(p) {
  layers <- Filter(function(l) inherits(l$geom, "GeomRasterAnn"), p$layers)
  stats::setNames(lapply(layers, function(l) l$geom_params$raster),
                  vapply(layers, function(l) as.character(l$data$.panel), ""))
}

renders <- function(p) {
  path <- withr::local_tempfile(fileext = ".png")
  ggplot2::ggsave(path, p, width = 6, height = 4, dpi = 40)
  file.exists(path) && file.size(path) > 0
}

as_rgb_array <- function(raster) {
  m <- as.matrix(raster)
  rgb <- grDevices::col2rgb(m)
  array(t(rgb), dim = c(nrow(m), ncol(m), 3))
}

test_that("plot_resizing() draws the engine's four resize modes next to the original", {
  skip_if_no_engine()
  photo <- extdata_photo()
  p <- plot_resizing(photo)
  expect_s3_class(p, "ggplot")
  rasters <- plot_rasters(p)
  expect_equal(names(rasters), c("original\n320 x 180", "squish", "crop", "pad",
                                 "rescale + crop\n(the default)"))
  for (r in rasters[-1]) expect_equal(dim(r), c(224, 224))
  # The very pixels predict() feeds the network, decoded as it decodes them.
  eng <- tidyvision:::engine
  modes <- c(squish = "squish", crop = "crop", pad = "pad", "rescale + crop\n(the default)" = "rescale_crop")
  for (panel in names(modes)) {
    min_side <- eng$transforms$decode_min_side(modes[[panel]], 224L)
    im <- eng$images$load_rgb(normalizePath(photo), min_side)
    x <- eng$classifier$eval_loader(modes[[panel]], 224L)(im)$permute(1L, 2L, 0L)$numpy()
    want <- tidyvision:::from_py(eng$bridge$to_r(x))
    expect_equal(as_rgb_array(rasters[[panel]]), want, label = panel)
  }
  # Pad keeps the whole 16:9 photo: black bars top and bottom.
  pad <- as_rgb_array(rasters[["pad"]])
  expect_true(all(pad[1:40, , ] == 0))
  expect_true(mean(pad[80:140, , ]) > 50)
  small <- plot_resizing(photo, size = 32)
  for (r in plot_rasters(small)[-1]) expect_equal(dim(r), c(32, 32))
  expect_true(renders(p))
})

test_that("plot_augmentation() shows n seeded random crops", {
  skip_if_no_engine()
  photo <- extdata_photo()
  p <- plot_augmentation(photo, n = 4, size = 48, seed = 3)
  rasters <- plot_rasters(p)
  expect_equal(names(rasters), paste("draw", 1:4))
  for (r in rasters) expect_equal(dim(r), c(48, 48))
  expect_false(identical(rasters[[1]], rasters[[2]]))
  expect_identical(plot_rasters(plot_augmentation(photo, n = 4, size = 48, seed = 3)), rasters)
  expect_false(identical(plot_rasters(plot_augmentation(photo, n = 4, size = 48, seed = 4)), rasters))
  expect_true(renders(p))
})

test_that("plot_images() shows up to n images per class, unreadable ones as tiles", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 5L, size = 32L)
  writeLines("not an image", file.path(root, "red", "broken.jpg"))
  imgs <- suppressWarnings(image_files(root))
  p <- plot_images(imgs, n = 4)
  rasters <- plot_rasters(p)
  expect_equal(length(rasters) + sum(p$data$caption == "broken.jpg"), 8)
  expect_setequal(unique(p$data$.panel), c("blue", "red"))
  expect_equal(as.vector(table(p$data$.panel)), c(4, 4))
  expect_identical(plot_images(imgs, n = 4)$data, p$data)
  expect_true(renders(p))

  all <- plot_images(imgs, n = 20, by = NULL, ncol = 3)
  expect_equal(nrow(all$data), 11)
  expect_equal(length(plot_rasters(all)), 10)
  expect_equal(max(all$data$x), 3)
  expect_true(renders(all))
  paths <- plot_images(imgs$path[1:2])
  expect_equal(nrow(paths$data), 2)
  expect_error(plot_images(imgs, by = nope), class = "tidyvision_error_missing_column")
  expect_error(plot_images(imgs, n = 0), class = "tidyvision_error_bad_argument")
})

test_that("the resizing plots name a bad path", {
  skip_if_no_engine()
  expect_error(plot_resizing("no/such.jpg"), class = "tidyvision_error_path_not_found")
  expect_error(plot_resizing(c("a.jpg", "b.jpg")), class = "tidyvision_error_bad_argument")
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not an image", bad)
  expect_error(plot_augmentation(bad), class = "tidyvision_error_unreadable")
  expect_error(plot_resizing(extdata_photo(), size = 0), class = "tidyvision_error_bad_argument")
  expect_snapshot(plot_resizing("no/such.jpg"), error = TRUE,
                  transform = function(x) gsub("\\(.*\\)", "(<wd>)", x))
})

# The colour of each image's frame: the first layer of both galleries.
frame_colours <- function(p) {
  expect_s3_class(p$layers[[1]]$geom, "GeomTile")
  ggplot2::ggplot_build(p)$data[[1]]$colour
}
colour_guide <- function(p) p$scales$get_scales("colour")$guide

test_that("class_colours() gives each class one colour whatever the subset plotted", {
  all <- class_colours(c("tools", "animals", "buildings", "animals"))
  expect_named(all, c("animals", "buildings", "tools"))
  expect_equal(anyDuplicated(all), 0)
  expect_equal(class_colours(factor("b", levels = c("b", "a"))), c(b = all[[1]], a = all[[2]]))
  expect_length(unique(class_colours(letters[1:12])), 12)
})

test_that("image grids share class colours, say more than one thing in a legend, and take a caption", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 3L, size = 400L, classes = c("red", "green", "blue"))
  imgs <- image_files(root)
  colours <- class_colours(imgs$label)
  p <- plot_images(imgs, caption = "Three tinted classes.")
  expect_equal(frame_colours(p), unname(colours[p$data$.class]))
  expect_equal(colour_guide(p), "none") # the panels already name the classes
  expect_equal(p$labels$caption, "Three tinted classes.")
  flat <- plot_images(imgs, by = NULL)
  expect_equal(colour_guide(flat), "legend")
  expect_equal(colour_guide(plot_images(imgs[imgs$label == "red", ], by = NULL)), "none")
  # Sharp at print size: 7 inches at 300 dpi over 3 columns, not a 128-pixel blur.
  expect_equal(max(dim(plot_rasters(p)[[1]])), 400)
  expect_equal(max(dim(plot_rasters(plot_images(imgs, ncol = 8, by = NULL))[[1]])), ceiling(2100 / 8))
  # One panel fills a landscape page instead of a single long row.
  expect_equal(max(flat$data$x), 4)
  expect_true(renders(flat))

  # plot_errors() frames by true class in the same colours, legend only for 2+.
  val <- imgs
  val$.pred_class <- ifelse(val$label == "red", "green", "red")
  val$.pred_red <- 0.6
  val$.pred_green <- 0.3
  val$.pred_blue <- 0.1
  e <- plot_errors(val, label, caption = "Made up.")
  expect_equal(frame_colours(e), unname(colours[e$data$truth]))
  expect_equal(colour_guide(e), "legend")
  expect_equal(e$labels$caption, "Made up.")
  # Red sorts last, so a subset-based mapping would give it the first colour.
  one <- plot_errors(val[val$label == "red", ], label)
  expect_equal(frame_colours(one), rep(colours[["red"]], 3))
  expect_equal(colour_guide(one), "none")
  expect_true(renders(e))
})

test_that("resize and augmentation panels fill a 7 x 5 page; captions can be given", {
  skip_if_no_engine()
  p <- plot_resizing(extdata_photo(), size = 32, caption = "Why we crop.")
  expect_equal(max(ggplot2::ggplot_build(p)$layout$layout$COL), 3)
  expect_equal(p$labels$caption, "Why we crop.")
  expect_equal(plot_resizing(extdata_photo(), size = 32)$labels$caption, "Network input: 32 x 32 pixels.")
  a <- plot_augmentation(extdata_photo(), n = 6, size = 32, caption = "Six draws.")
  expect_equal(max(ggplot2::ggplot_build(a)$layout$layout$COL), 3)
  expect_equal(a$labels$caption, "Six draws.")
  long <- paste(rep("a long caption", 20), collapse = " ")
  expect_match(plot_augmentation(extdata_photo(), n = 2, size = 32, caption = long)$labels$caption, "\n")
})

test_that("plot_errors() shows the most confident mistakes first, n at most", {
  skip_if_no_engine()
  dir <- system.file("extdata", "images", "animals", package = "tidyvision")
  paths <- file.path(dir, c("cat.jpg", "dog.jpg", "cow.jpg", "pig.jpg", "owl.jpg", "duck.jpg"))
  val <- tibble::tibble(
    path = paths,
    label = c("cat", "dog", "cat", "dog", "cat", "dog"),
    .pred_class = factor(c("cat", "cat", "dog", "cat", "dog", "dog"), levels = c("cat", "dog")),
    .pred_cat = c(0.9, 0.6, 0.2, 0.95, 0.45, 0.1),
    .pred_dog = 1 - c(0.9, 0.6, 0.2, 0.95, 0.45, 0.1)
  )
  p <- plot_errors(val, label)
  expect_s3_class(p, "ggplot")
  # Mistakes: dog.jpg (cat 0.6), cow.jpg (dog 0.8), pig.jpg (cat 0.95), owl.jpg (dog 0.55)
  expect_equal(basename(p$data$path), c("pig.jpg", "cow.jpg", "dog.jpg", "owl.jpg"))
  expect_equal(p$data$probability, c(0.95, 0.8, 0.6, 0.55))
  expect_equal(p$data$truth, c("dog", "cat", "dog", "cat"))
  expect_equal(p$data$prediction, c("cat", "dog", "cat", "dog"))
  expect_length(Filter(function(l) inherits(l$geom, "GeomRasterAnn"), p$layers), 4)
  expect_s3_class(grob_of(p), "gtable")
  top2 <- plot_errors(val, label, n = 2)
  expect_equal(basename(top2$data$path), c("pig.jpg", "cow.jpg"))
  expect_match(top2$labels$title, "2 of 4")
  # Without probability columns, the row order.
  plain <- plot_errors(val[c("path", "label", ".pred_class")], label)
  expect_equal(basename(plain$data$path), c("dog.jpg", "cow.jpg", "pig.jpg", "owl.jpg"))
  expect_true(all(is.na(plain$data$probability)))
  # An unreadable image is a grey tile, not an error.
  broken <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not an image", broken)
  val$path[2] <- broken
  expect_s3_class(grob_of(plot_errors(val, label)), "gtable")
})

test_that("plot_errors() with no mistakes says so; bad input is classed", {
  val <- tibble::tibble(path = c("a.jpg", "b.jpg"), label = c("x", "y"),
                        .pred_class = c("x", "y"))
  p <- plot_errors(val, label)
  expect_s3_class(p, "ggplot")
  expect_equal(nrow(p$data), 0)
  expect_match(p$layers[[1]]$aes_params$label, "No misclassified images")
  expect_s3_class(grob_of(p), "gtable")
  expect_error(plot_errors(val, label, n = 0), class = "tidyvision_error_bad_argument")
  expect_error(plot_errors(val, label, nope), class = "tidyvision_error_missing_column")
  expect_error(plot_errors(val[-1], label), class = "tidyvision_error_missing_column")
})

test_that("figures for a paper: names keep their distinguishing end, panels spread evenly, decades labelled", {
  short <- tidyvision:::truncate_name(c("measuring_tape2.jpg", "measuring_tape3.jpg", "cat.jpg"), 13)
  expect_equal(short[3], "cat.jpg")
  expect_false(anyDuplicated(short) > 0)
  expect_true(all(nchar(short) <= 13))
  expect_match(short[1], "tape2$")
  expect_equal(tidyvision:::truncate_name("not protest at all", 10, file = FALSE), "not p\u2026 all")
  expect_equal(tidyvision:::balanced_columns(6, 7 / 5 * 1.4), 3L)
  expect_equal(tidyvision:::balanced_columns(4, 7 / 5 * 1.4), 2L)
  expect_equal(tidyvision:::balanced_columns(1), 1L)
  # The label app's file name breaks after separators only, and reads as the name.
  html <- as.character(tidyvision:::breakable_name("neuschwanstein_castle-at<dusk>.jpg"))
  expect_equal(html, "neuschwanstein_<wbr>castle-<wbr>at&lt;dusk&gt;.<wbr>jpg")
})

test_that("plan_coding()'s plot labels decades with thousands marks, so panels' labels never run together", {
  skip_if_no_engine()
  preds <- tibble::tibble(path = paste0(1:5000, ".jpg"),
                          .pred_class = factor(rep(c("anger", "fear", "joy", "sad"), 1250)))
  p <- ggplot2::autoplot(plan_coding(preds, correlation = 0.6))
  built <- ggplot2::ggplot_build(p)
  labels <- built$layout$panel_params[[1]]$x$get_labels()
  expect_equal(labels[!is.na(labels)], c("10", "100", "1,000"))
  expect_equal(ggplot2::calc_element("panel.spacing.x", ggplot2::theme_get() + p$theme), ggplot2::unit(1.5, "lines"))
})
