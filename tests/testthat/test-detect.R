test_that("a trained detector finds the drawn shapes on its training images", {
  skip_if_no_engine()
  fit <- shape_detector()
  truth <- shape_boxes()[shape_boxes()$split == "train", ]
  found <- detect_objects(truth$path, model = fit, confidence = 0.1)
  expect_named(found, c("path", "object", "class", "confidence", "xmin", "ymin", "xmax", "ymax",
                        "image_width", "image_height"))
  best <- vapply(seq_len(nrow(truth)), function(i) {
    mine <- found[found$path == truth$path[i] & found$class %in% truth$class[i], ]
    if (nrow(mine) == 0) return(0)
    max(box_iou(mine, truth[i, ]))
  }, numeric(1))
  expect_gte(sum(best >= 0.5), 16)
})

test_that("boxes are pixels inside the image, and every image is kept", {
  skip_if_no_engine()
  shapes <- shape_boxes()
  found <- detect_objects(shapes, model = shape_detector(), confidence = 0.01, batch_size = 7)
  expect_equal(unique(found$path), shapes$path)
  expect_type(found$object, "integer")
  expect_true(all(found$image_width == 128L & found$image_height == 128L))
  boxes <- found[!is.na(found$object), ]
  expect_gt(nrow(boxes), 0)
  expect_true(all(boxes$xmin >= 0 & boxes$xmin < boxes$xmax & boxes$xmax <= boxes$image_width))
  expect_true(all(boxes$ymin >= 0 & boxes$ymin < boxes$ymax & boxes$ymax <= boxes$image_height))
  expect_true(all(boxes$confidence > 0 & boxes$confidence <= 1))
  by_image <- split(boxes$object, boxes$path)
  expect_true(all(vapply(by_image, function(o) identical(o, seq_along(o)), logical(1))))
})

test_that("images without objects count as zero", {
  skip_if_no_engine()
  shapes <- shape_boxes()
  found <- detect_objects(shapes$path[c(1, 2, 25, 26)], model = shape_detector(), confidence = 0.99)
  expect_equal(nrow(found), 4)
  expect_true(all(is.na(found$object) & is.na(found$class) & is.na(found$xmin)))
  counts <- count_objects(found, class = c("square", "disc"))
  expect_equal(nrow(counts), 8)
  expect_equal(counts$n, rep(0L, 8))
  expect_equal(count_objects(found)$n, rep(0L, 4))
})

test_that("unreadable images are a row with NA sizes and one warning", {
  skip_if_no_engine()
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not a jpeg", bad)
  paths <- c(shape_boxes()$path[1], bad)
  expect_warning(found <- detect_objects(paths, model = shape_detector()),
                 class = "tidyvision_warning_unreadable")
  expect_equal(found$path[nrow(found)], bad)
  expect_true(is.na(found$image_width[nrow(found)]))
  expect_equal(count_objects(found, class = "square")$n[2], NA_integer_)
})

test_that("boxes follow the EXIF orientation", {
  skip_if_no_engine()
  src <- shape_boxes()$path[3]
  turned <- fixtures()$exif_rotated_copy(src, withr::local_tempfile(fileext = ".jpg"), 6L)
  found <- detect_objects(c(src, turned), model = shape_detector(), confidence = 0.1)
  a <- found[found$path == src, ][1, ]
  b <- found[found$path == turned, ][1, ]
  expect_equal(a$class, b$class)
  expect_gt(box_iou(a, b), 0.8)
})

test_that("classes filters by name; unknown names say what exists", {
  skip_if_no_engine()
  paths <- shape_boxes()$path[1:8]
  found <- detect_objects(paths, model = shape_detector(), confidence = 0.05, classes = "disc")
  expect_true(all(found$class %in% c("disc", NA)))
  expect_error(detect_objects(paths[1], model = shape_detector(), classes = "flag"),
               "disc, square", class = "tidyvision_error_unknown_class")
})

test_that("missing weights offline are a quick classed error that says how to get them", {
  skip_if_no_engine()
  local_py_env(TIDYVISION_OFFLINE = "1")
  withr::local_dir(withr::local_tempdir())
  img <- shape_boxes()$path[1]
  err <- expect_error(detect_objects(img, model = "yolov8n.pt"), class = "tidyvision_error_weights_missing")
  # Once ultralytics is imported, the answer takes no time at all.
  start <- Sys.time()
  expect_error(detect_objects(img, model = "yolov8n.pt"), class = "tidyvision_error_weights_missing")
  expect_lt(as.numeric(difftime(Sys.time(), start, units = "secs")), 5)
  expect_match(conditionMessage(err), "yolov8n.pt")
  expect_match(conditionMessage(err), "offline")
  expect_match(conditionMessage(err), "github.com/ultralytics/assets")
  expect_error(detect_objects(img, model = "no/such/best.pt"), "does not exist",
               class = "tidyvision_error_weights_missing")
})

test_that("a planted or handed-over .pt runs no code in any verb", {
  skip_if_no_engine()
  local_py_env(TIDYVISION_OFFLINE = "1")
  fx <- fixtures()
  dir <- withr::local_tempdir()
  withr::local_dir(dir)
  marker <- file.path(dir, "marker")
  real <- shape_detector()$weights
  # Planted under the default model's name, in the working directory.
  fx$plant_payload(file.path(dir, "yolov8n.pt"), marker, real)
  img <- shape_boxes()$path[1:2]
  expect_error(detect_objects(img), "not on this machine", class = "tidyvision_error_weights_missing")
  expect_error(autotag(img, model = "yolov8n.pt"), class = "tidyvision_error_weights_missing")
  # Handed over and given by path, on purpose.
  given <- fx$plant_payload(file.path(dir, "given.pt"), marker, real)
  expect_error(detect_objects(img, model = given), "run code it names", class = "tidyvision_error_weights_unsafe")
  expect_error(detect_objects(img, model = "./yolov8n.pt"), class = "tidyvision_error_weights_unsafe")
  expect_error(classify_folder(given, img, output = file.path(dir, "c.sqlite")),
               class = "tidyvision_error_weights_unsafe")
  expect_error(train_detector(shape_boxes(), model = given, epochs = 1, image_size = 64),
               class = "tidyvision_error_weights_unsafe")
  expect_false(file.exists(marker))
})

test_that("a detector whose weights are gone says so", {
  gone <- structure(list(weights = tempfile(fileext = ".pt")), class = "tv_detector")
  expect_error(detect_objects("a.jpg", model = gone), class = "tidyvision_error_weights_missing")
})

test_that("arguments are checked before anything runs", {
  expect_error(detect_objects("a.jpg", confidence = 2), class = "tidyvision_error_bad_argument")
  expect_error(detect_objects("a.jpg", iou = -1), class = "tidyvision_error_bad_argument")
  expect_error(detect_objects("a.jpg", classes = 1), class = "tidyvision_error_bad_argument")
  expect_error(detect_objects("a.jpg", model = 3), class = "tidyvision_error_bad_argument")
  expect_error(detect_objects(data.frame(x = 1)), class = "tidyvision_error_missing_column")
})

found_by_hand <- function() {
  tibble::tibble(
    path = c("a.jpg", "a.jpg", "a.jpg", "b.jpg", "c.jpg"),
    object = c(1L, 2L, 3L, NA, NA), class = c("person", "person", "car", NA, NA),
    confidence = c(0.9, 0.8, 0.6, NA, NA),
    xmin = c(1, 5, 9, NA, NA), ymin = 1, xmax = c(4, 8, 12, NA, NA), ymax = 5,
    image_width = c(20L, 20L, 20L, 30L, NA), image_height = c(10L, 10L, 10L, 30L, NA)
  )
}

test_that("count_objects() counts per image and class, zeros filled", {
  found <- found_by_hand()
  expect_equal(count_objects(found), tibble::tibble(
    path = c("a.jpg", "a.jpg", "b.jpg", "c.jpg"), class = c("car", "person", NA, NA),
    n = c(1L, 2L, 0L, NA)
  ))
  asked <- count_objects(found, class = c("person", "dog"))
  expect_equal(asked$path, rep(c("a.jpg", "b.jpg", "c.jpg"), each = 2))
  expect_equal(asked$class, rep(c("person", "dog"), 3))
  expect_equal(asked$n, c(2L, 0L, 0L, 0L, NA, NA))
  expect_error(count_objects(mtcars), class = "tidyvision_error_bad_argument")
  expect_error(count_objects(found, class = 1), class = "tidyvision_error_bad_argument")
})

test_that("plot_detections() draws images with labelled boxes", {
  skip_if_no_engine()
  found <- detect_objects(shape_boxes()$path[1:4], model = shape_detector(), confidence = 0.1)
  p <- plot_detections(found)
  expect_s3_class(p, "ggplot")
  built <- ggplot2::ggplot_build(p)
  expect_equal(nlevels(built$layout$layout$.panel), 4)
  expect_equal(nrow(built$data[[length(built$data)]]), sum(!is.na(found$object)))
  one <- plot_detections(found, path = found$path[1])
  expect_equal(nlevels(ggplot2::ggplot_build(one)$layout$layout$.panel), 1)
  expect_error(plot_detections(found, path = "elsewhere.jpg"), class = "tidyvision_error_bad_argument")
})

test_that("plot_detections() colours a class alike in every figure, repels labels and keeps captions", {
  skip_if_no_engine()
  paths <- shape_boxes()$path[1:3]
  found <- tibble::tibble(path = paths[c(1, 1, 1, 2, 3)], object = c(1:3, 1L, NA),
                          class = c("disc", "square", "square", "square", NA),
                          confidence = c(0.9, 0.8, 0.7, 0.6, NA),
                          xmin = c(10, 14, 60, 5, NA), ymin = c(10, 12, 60, 5, NA),
                          xmax = c(40, 44, 90, 30, NA), ymax = c(40, 42, 90, 30, NA),
                          image_width = 128L, image_height = 128L)
  caption <- paste(rep("A long caption that must wrap rather than run off the figure.", 4), collapse = " ")
  both <- plot_detections(found, caption = caption)
  squares <- plot_detections(found, path = paths[2])
  layer_of <- function(p, geom) which(vapply(p$layers, function(l) inherits(l$geom, geom), TRUE))
  both_rects <- ggplot2::layer_data(both, layer_of(both, "GeomRect"))
  one_rects <- ggplot2::layer_data(squares, layer_of(squares, "GeomRect"))
  # The square's colour does not depend on the disc drawn beside it.
  drawn <- found$class[!is.na(found$class)]
  expect_equal(unique(both_rects$colour[drawn == "square"]), unique(one_rects$colour))
  expect_length(unique(both_rects$colour), 2)
  expect_length(layer_of(both, "GeomLabelRepel"), 1)
  expect_match(both$labels$caption, "\n")
  expect_equal(gsub("\\s+", " ", both$labels$caption), caption)
  has_legend <- function(p) {
    g <- ggplot2::ggplotGrob(p)
    box <- which(g$layout$name == "guide-box")
    length(box) == 1 && !inherits(g$grobs[[box]], "zeroGrob")
  }
  expect_true(has_legend(both))
  expect_false(has_legend(squares))
})

test_that("detect_objects() shows a progress bar that reaches the end", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  paths <- shape_boxes()$path[1:3]
  expect_snapshot(found <- detect_objects(paths, shape_detector(), verbose = TRUE),
                  transform = scrub_progress)
  expect_equal(unique(found$path), paths)
})
