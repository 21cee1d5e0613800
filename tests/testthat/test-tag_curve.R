rekognition <- function(name) test_path("fixtures", "rekognition", name)

# A tagger more confident on the event than off it, with overlap.
graded_tags <- function(n = 60) {
  truth <- tibble::tibble(path = sprintf("/data/img%03d.jpg", seq_len(n)), protest = rep(c(TRUE, FALSE), n / 2))
  conf <- ifelse(truth$protest, seq(0.45, 0.99, length.out = n), seq(0.2, 0.85, length.out = n))
  conf[n - 1] <- 0.99  # a protest tagged at exactly 0.99
  tags <- tibble::tibble(path = truth$path, tag = "crowd", confidence = round(conf, 3))
  list(truth = truth, tags = tags[-(1:3), ])  # three images never tagged
}

# tag_curve() at `t` must be validate_tags() at `t`: every metric and interval.
expect_curve_reproduces <- function(curve, tags, truth, tag, label, ...) {
  for (t in unique(curve$min_confidence)) {
    single <- suppressWarnings(validate_tags(tags, truth, tag, {{ label }}, min_confidence = t, ...))
    at <- curve[curve$min_confidence == t, ]
    expect_equal(at$.estimate, single$metrics$.estimate, info = t)
    expect_equal(at$.lower, single$metrics$.lower, info = t)
    expect_equal(at$.upper, single$metrics$.upper, info = t)
    expect_equal(at$.metric, single$metrics$.metric)
    expect_equal(at$n_tagged[1], sum(single$predictions$tagged == levels(single$predictions$tagged)[1]))
  }
}

test_that("tag_curve() reproduces validate_tags() at each single threshold", {
  d <- graded_tags()
  thresholds <- c(0.3, seq(0.5, 0.99, by = 0.01))
  expect_warning(curve <- tag_curve(d$tags, d$truth, "crowd", protest, min_confidence = thresholds, times = 300),
                 class = "tidyvision_warning_untagged")
  expect_s3_class(curve, "tv_tag_curve")
  expect_named(curve, c("min_confidence", "n_tagged", ".metric", ".estimator", ".estimate", ".lower", ".upper",
                        ".method"))
  expect_equal(unique(curve$min_confidence), thresholds)
  # a threshold from seq() counts a tag of exactly that confidence
  top <- curve[curve$min_confidence == 0.99 & curve$.metric == "recall", ]
  expect_equal(top$n_tagged, sum(d$tags$confidence >= 0.99))
  expect_gt(top$n_tagged, 0)
  expect_curve_reproduces(curve, d$tags, d$truth, "crowd", protest, times = 300)
  # raising the threshold tags fewer images and never raises recall
  recall <- curve$.estimate[curve$.metric == "recall"]
  expect_true(all(diff(recall) <= 0) && recall[1] > recall[length(recall)])
  expect_true(all(diff(curve$n_tagged[curve$.metric == "recall"]) <= 0))
})

test_that("the curve of a real Rekognition file reproduces validate_tags(), undefined precision warned once", {
  skip_if_no_engine()
  tags <- read_rekognition(rekognition("detect_labels.json"))
  truth <- tibble::tibble(path = c("protest_01.jpg", "protest_02.jpg", "street_03.jpg"),
                          protest = c(TRUE, TRUE, FALSE))
  expect_warning(curve <- tag_curve(tags, truth, c("crowd", "parade"), protest, times = 200),
                 class = "tidyvision_warning_undefined_metric")
  expect_curve_reproduces(curve, tags, truth, c("crowd", "parade"), protest, times = 200)
  expect_true(is.na(curve$.estimate[curve$min_confidence == 0.99 & curve$.metric == "precision"]))
})

test_that("compare_taggers() puts real ImageNet taggers side by side on the same labels", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))
  imgs <- imgs[ave(seq_along(imgs$label), imgs$label, FUN = seq_along) <= 4, ]
  truth <- tibble::tibble(path = imgs$path, animal = imgs$label == "animals")
  # ImageNet-1k's first 398 classes are animals
  animals <- readLines(system.file("python", "tidyvision", "imagenet_classes.txt", package = "tidyvision"))[1:398]
  top5 <- autotag(imgs, top_k = 5, verbose = FALSE)
  top1 <- top5[!duplicated(top5$path), ]
  thresholds <- seq(0.05, 0.95, by = 0.05)
  both <- suppressWarnings(compare_taggers(list(top5 = top5, top1 = top1), truth, tolower(animals), animal,
                                           min_confidence = thresholds, times = 200))
  expect_equal(levels(both$tagger), c("top5", "top1"))
  alone <- suppressWarnings(tag_curve(top1, truth, tolower(animals), animal, min_confidence = thresholds, times = 200))
  expect_equal(tibble::as_tibble(both[both$tagger == "top1", -1]), tibble::as_tibble(alone), ignore_attr = TRUE)
  # more tags per image can only find more animals
  recall <- both[both$.metric == "recall", ]
  expect_true(all(recall$.estimate[recall$tagger == "top5"] >= recall$.estimate[recall$tagger == "top1"]))
  # the tagger knows animals: at a low threshold it finds most, and tags few tools or buildings
  low <- both[both$tagger == "top5" & both$min_confidence == 0.05, ]
  expect_gte(low$.estimate[low$.metric == "recall"], 0.75)
  expect_gte(low$.estimate[low$.metric == "precision"], 0.75)
  expect_s3_class(autoplot(both), "ggplot")
  # each tagger with its own tag names
  own <- suppressWarnings(compare_taggers(list(a = top1, b = top1), truth, list(a = "hen", b = tolower(animals)),
                                          animal, min_confidence = 0.1, times = 0))
  expect_lte(own$.estimate[own$tagger == "a" & own$.metric == "recall"],
             own$.estimate[own$tagger == "b" & own$.metric == "recall"])
})

test_that("autoplot() marks the best-F1 or the chosen threshold", {
  d <- graded_tags()
  curve <- suppressWarnings(tag_curve(d$tags, d$truth, "crowd", protest, times = 100))
  p <- autoplot(curve)
  marked <- ggplot2::layer_data(p, 3)
  f1 <- curve[curve$.metric == "f1", ]
  best <- f1$min_confidence[which.max(f1$.estimate)]
  at <- function(m) curve$.estimate[curve$.metric == m & curve$min_confidence == best]
  expect_equal(c(marked$x, marked$y), c(at("recall"), at("precision")))
  p2 <- autoplot(curve, type = "threshold", threshold = 0.7)
  expect_equal(ggplot2::layer_data(p2, 3)$xintercept, 0.7)
  path <- withr::local_tempfile(fileext = ".png")
  ggplot2::ggsave(path, p, width = 7, height = 5)
  expect_true(file.size(path) > 0)
})

test_that("bad curve arguments are classed errors", {
  d <- graded_tags()
  expect_error(tag_curve(d$tags, d$truth, "crowd", protest, min_confidence = c(0.5, 2)),
               class = "tidyvision_error_bad_argument")
  expect_error(validate_tags(d$tags, d$truth, "crowd", protest, min_confidence = c(0.5, 0.6)),
               "tag_curve", class = "tidyvision_error_bad_argument")
  expect_error(compare_taggers(d$tags, d$truth, "crowd", protest), class = "tidyvision_error_bad_argument")
  expect_error(compare_taggers(list(a = d$tags), d$truth, list(b = "crowd"), protest),
               class = "tidyvision_error_bad_argument")
})
