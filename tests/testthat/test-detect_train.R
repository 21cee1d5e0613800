test_that("a trained detector carries its classes, weights and per-epoch metrics", {
  skip_if_no_engine()
  fit <- shape_detector()
  expect_s3_class(fit, "tv_detector")
  expect_equal(fit$classes, c("disc", "square"))
  expect_true(file.exists(fit$weights))
  h <- fit_history(fit)
  expect_equal(h$epoch, 1:40)
  expect_named(h, c("epoch", "train_box_loss", "train_cls_loss", "train_dfl_loss", "precision",
                    "recall", "map50", "map50_95", "val_box_loss", "val_cls_loss", "val_dfl_loss",
                    "learning_rate", "seconds"))
  expect_gt(max(h$map50), 0.7)
  expect_lt(h$train_box_loss[40], h$train_box_loss[1])
  expect_equal(c(fit$n_train, fit$n_val), c(20L, 6L))
  lines <- format(fit)
  expect_match(lines[1], "^Started from: yolov8-tiny.yaml; 40 epochs at 128 px")
  expect_equal(lines[2], "Classes:      disc, square")
  expect_equal(lines[3], "Images:       20 to train, 6 to validate")
  expect_match(lines[4], "^Best epoch \\d+: mAP50 ")
  expect_output(print(fit), "tidyvision detector")
  expect_s3_class(autoplot(fit), "ggplot")
})

test_that("a detector carries its weights, so saveRDS() or a new session keeps it usable", {
  skip_if_no_engine()
  fit <- shape_detector()
  img <- shape_boxes()$path[1:3]
  kept <- withr::local_tempfile(fileext = ".rds")
  saveRDS(fit, kept)
  moved <- readRDS(kept)
  moved$weights <- file.path(withr::local_tempdir(), "gone", "best.pt")  # as in a new session
  expect_equal(detect_objects(img, model = moved), detect_objects(img, model = fit))
  moved$carried <- NULL
  expect_error(detect_objects(img, model = moved), "gone", class = "tidyvision_error_weights_missing")
})

test_that("with its defaults train_detector() learns a small set from scratch, and says when it doesn't", {
  skip_if_no_engine()
  fit <- shape_detector() # train_detector(shape_boxes(), epochs = 40, image_size = 128)
  expect_false("tidyvision_warning_no_learning" %in% detect_cache$warnings)
  expect_equal(fit$model, "yolov8-tiny.yaml")
  expect_gt(max(fit_history(fit)$map50), 0.7)
  val <- shape_boxes()[shape_boxes()$split == "val" & !is.na(shape_boxes()$class), ]
  found <- detect_objects(val$path, model = fit, confidence = 0.25)
  expect_gte(sum(!is.na(found$class)), nrow(val) - 1)
  expect_warning(stuck <- train_detector(shape_boxes(), epochs = 1, image_size = 64, lr0 = 0),
                 "learned nothing", class = "tidyvision_warning_no_learning")
  expect_equal(fit_history(stuck)$map50, 0)
})

test_that("the no-learning warning looks at every epoch's validation mAP50", {
  expect_warning(warn_no_learning(tibble::tibble(map50 = c(0, 0, 0))), "all 3 epochs",
                 class = "tidyvision_warning_no_learning")
  expect_no_warning(warn_no_learning(tibble::tibble(map50 = c(0, 0.01, 0))))
  expect_no_warning(warn_no_learning(tibble::tibble(map50 = numeric())))
})

test_that("a YOLO data.yaml trains into a kept folder, which is not overwritten", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  cols <- fixtures()$make_shapes(file.path(root, "src"), n = 4L, size = c(64L, 64L))
  yaml <- fixtures()$write_yolo_folder(file.path(root, "yolo"), cols)
  dir <- file.path(root, "kept")
  # Two epochs on four images teach nothing; the warning says so (tested above).
  fit <- suppressWarnings(train_detector(yaml, model = "yolov8-tiny.yaml", epochs = 2, image_size = 64,
                                         batch_size = 4, dir = dir),
                          classes = "tidyvision_warning_no_learning")
  expect_equal(fit$classes, c("square", "disc"))
  expect_true(startsWith(fit$weights, normalizePath(dir)))
  expect_true(file.exists(fit$weights))
  expect_true(file.exists(file.path(dir, "train", "results.csv")))
  expect_equal(list.files(file.path(root, "yolo"), pattern = "cache$"), character())
  found <- detect_objects(unlist(cols$path), model = fit$weights, confidence = 0.5)
  expect_equal(unique(found$path), unlist(cols$path))
  expect_error(train_detector(yaml, model = "yolov8-tiny.yaml", epochs = 1, dir = dir),
               class = "tidyvision_error_exists")
  expect_true(file.exists(fit$weights))
  expect_false(any(grepl("^[.]tidyvision", list.files(root, all.files = TRUE))))
})

test_that("box tibbles are checked before training", {
  boxes <- tibble::tibble(path = c("a.jpg", "b.jpg"), class = c("flag", "flag"),
                          xmin = c(1, 5), ymin = 1, xmax = c(4, 2), ymax = 5)
  expect_error(train_detector(boxes[1:4]), class = "tidyvision_error_missing_column")
  expect_error(train_detector(boxes), "row 2: b.jpg", class = "tidyvision_error_bad_boxes")
  expect_error(train_detector(boxes, 0.1), class = "tidyvision_error_bad_argument")
  expect_error(train_detector(boxes, lr0 = 0.1, 3), class = "tidyvision_error_bad_argument")
  expect_error(train_detector(42), class = "tidyvision_error_bad_argument")
  expect_error(train_detector("no/such/data.yaml"), class = "tidyvision_error_path_not_found")
  boxes$class <- NA
  expect_error(train_detector(boxes), class = "tidyvision_error_no_images")
})

test_that("the split column decides validation, else a random fifth does", {
  boxes <- tibble::tibble(path = paste0(letters[1:10], ".jpg"), class = "flag",
                          xmin = 1, ymin = 1, xmax = 5, ymax = 5)
  auto <- box_images(check_boxes(boxes, NULL), seed = 1, call = NULL)
  expect_equal(sum(auto$split == "val"), 2)
  expect_equal(auto, box_images(check_boxes(boxes, NULL), seed = 1, call = NULL))
  boxes$split <- rep(c("train", "val", "test"), c(6, 3, 1))
  given <- box_images(check_boxes(boxes, NULL), seed = 1, call = NULL)
  expect_equal(given$split, rep(c("train", "val"), c(6, 3)))
  boxes$split <- "train"
  expect_error(box_images(boxes, 1, NULL), class = "tidyvision_error_bad_argument")
})

test_that("settings train_detector() owns can't be passed through ...", {
  skip_if_no_engine()
  boxes <- shape_boxes()
  expect_error(train_detector(boxes, epochs = 1, imgsz = 64), "imgsz",
               class = "tidyvision_error_bad_argument")
})

test_that("autoplot() of a detector shows both mAPs apart, from 0 up, with one legend", {
  h <- tibble::tibble(epoch = 1:5, train_box_loss = c(3, 2.5, 2, 1.8, 1.7),
                      val_box_loss = c(3.2, 2.9, 2.4, 2.2, 2.1), map50 = c(0, 0, 0.2, 0.5, 0.6),
                      map50_95 = c(0, 0, 0.05, 0.2, 0.3))
  p <- autoplot(structure(list(history = h), class = "tv_detector"))
  built <- ggplot2::ggplot_build(p)
  lines <- built$data[[1]]
  style <- unique(lines[c("group", "colour", "linetype")])
  expect_equal(nrow(style), 4)
  expect_equal(anyDuplicated(style$colour), 0)
  expect_equal(length(unique(built$data[[2]]$shape)), 4)
  lows <- vapply(built$layout$panel_params, function(pp) pp$y.range[1], numeric(1))
  expect_equal(lows, c(0, 0))
  grob <- ggplot2::ggplotGrob(p)
  guides <- grob$grobs[[which(grob$layout$name == "guide-box")]]
  expect_equal(sum(grepl("^guides", guides$layout$name)), 1)
})
