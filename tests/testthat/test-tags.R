rekognition <- function(name) test_path("fixtures", "rekognition", name)

table_6_1 <- function() {
  # 422 protest images (374 tagged), 393 others (72 tagged).
  truth <- tibble::tibble(path = sprintf("/data/img%03d.jpg", 1:815),
                          protest = rep(c(TRUE, FALSE), c(422, 393)))
  tagged <- c(1:374, 423:494)
  tags <- tibble::tibble(
    path = c(truth$path[tagged], truth$path),
    tag = c(rep("protest", length(tagged)), rep("outdoor", 815)),
    confidence = c(rep(0.8, length(tagged)), rep(0.9, 815)), source = "by hand"
  )
  list(truth = truth, tags = tags)
}

test_that("validate_tags() reproduces the book's Table 6.1", {
  d <- table_6_1()
  v <- validate_tags(d$tags, d$truth, tag = "protest", label = protest)
  expect_s3_class(v, "tv_tag_validation")
  cm <- v$confusion
  expect_equal(levels(cm$truth), c("protest", "not protest"))
  expect_equal(cm$n, c(374L, 48L, 72L, 321L))
  est <- rlang::set_names(v$metrics$.estimate, v$metrics$.metric)
  expect_equal(round(est[["accuracy"]], 3), 0.853)
  expect_equal(round(est[["precision"]], 3), 0.839)
  expect_equal(round(est[["recall"]], 3), 0.886)
  expect_true(all(v$metrics$.lower < est & est < v$metrics$.upper))
  expect_equal(nrow(v$predictions), 815)
  expect_snapshot(print(v))
  expect_s3_class(autoplot(v), "ggplot")
})

test_that("min_confidence, case and several tags decide what counts", {
  d <- table_6_1()
  expect_warning(
    strict <- validate_tags(d$tags, d$truth, tag = "protest", label = protest, min_confidence = 0.85),
    class = "tidyvision_warning_undefined_metric"
  )
  expect_equal(strict$confusion$n, c(0L, 422L, 0L, 393L))
  d$tags$tag[d$tags$tag == "protest"] <- "Protest"
  either <- validate_tags(d$tags, d$truth, tag = c("riot", "PROTEST"), label = protest)
  expect_equal(either$confusion$n, c(374L, 48L, 72L, 321L))
  everything <- validate_tags(d$tags, d$truth, tag = "outdoor", label = protest)
  expect_equal(everything$confusion$n, c(422L, 0L, 393L, 0L))
})

test_that("file-name tags join to full paths; untagged images warn", {
  skip_if_no_engine()
  tags <- read_rekognition(rekognition("awsrekognition_labels.csv"))
  truth <- tibble::tibble(path = file.path("/photos", c("protest_01.jpg", "protest_02.jpg",
                                                        "street_03.jpg", "never_sent.jpg")),
                          kind = factor(c("protest", "protest", "street", "street"),
                                        levels = c("protest", "street")))
  expect_warning(v <- validate_tags(tags, truth, "crowd", kind, min_confidence = 0.6),
                 "never_sent.jpg", class = "tidyvision_warning_untagged")
  expect_equal(as.character(v$predictions$tagged), c("protest", "not protest", "not protest", "not protest"))
  expect_equal(v$predictions$confidence, c(0.9714, NA, NA, NA))
  expect_equal(levels(v$predictions$truth), c("protest", "not protest"))
  expect_error(validate_tags(tags, truth, "crowd", kind, event = "parade"), class = "tidyvision_error_bad_argument")
  truth$kind <- as.character(truth$kind)
  expect_error(validate_tags(tags, truth, "crowd", kind), "event", class = "tidyvision_error_bad_argument")
  dup <- rbind(truth, transform(truth, path = sub("/photos", "/other", path)))
  expect_error(validate_tags(tags, dup, "crowd", kind, event = "protest"), "more than once",
               class = "tidyvision_error_bad_argument")
})

test_that("full-path tags join to file-name truth, and the other way round", {
  d <- table_6_1()
  expected <- c(374L, 48L, 72L, 321L)
  names_only <- transform(d$truth, path = basename(path))
  expect_equal(validate_tags(d$tags, names_only, "protest", protest, times = 0)$confusion$n, expected)
  tag_names <- transform(d$tags, path = basename(path))
  expect_equal(validate_tags(tag_names, d$truth, "protest", protest, times = 0)$confusion$n, expected)
  expect_equal(validate_tags(tag_names, names_only, "protest", protest, times = 0)$confusion$n, expected)
  # Two tagged images with one file name can't be told apart by name.
  clash <- rbind(d$tags, transform(d$tags[1, ], path = sub("/data", "/other", path)))
  expect_error(validate_tags(clash, names_only, "protest", protest), "more than once",
               class = "tidyvision_error_bad_argument")
})

test_that("validate_tags() says when nothing joins or arguments are wrong", {
  d <- table_6_1()
  d$truth$path <- sub("/data", "/elsewhere", d$truth$path)
  expect_error(validate_tags(d$tags, d$truth, "protest", protest), class = "tidyvision_error_no_match")
  two_tags <- rbind(d$tags, d$tags)
  two_tags <- two_tags[order(two_tags$path), ]
  expect_snapshot(validate_tags(two_tags, d$truth, "protest", protest), error = TRUE)
  names_only <- transform(d$truth, path = paste0("x", basename(path)))
  expect_snapshot(validate_tags(d$tags, names_only, "protest", protest), error = TRUE)
  expect_error(validate_tags(d$tags, d$truth, "protest", nope), class = "tidyvision_error_missing_column")
  expect_error(validate_tags(d$tags[1:2], d$truth, "protest", protest), class = "tidyvision_error_bad_argument")
  expect_error(validate_tags(d$tags, d$truth, 1, protest), class = "tidyvision_error_bad_argument")
  expect_error(validate_tags(d$tags, d$truth, "protest", protest, min_confidence = 50),
               class = "tidyvision_error_bad_argument")
})

test_that("read_rekognition() reads every format the same way", {
  skip_if_no_engine()
  labels <- read_rekognition(rekognition("detect_labels.json"))
  expect_named(labels, c("path", "tag", "confidence", "source"))
  expect_equal(labels$path[1:4], rep("protest_01.jpg", 4))
  expect_equal(labels$tag[1:4], c("Person", "Crowd", "Parade", "Text"))
  expect_equal(labels$confidence[2], 0.9714)
  expect_equal(unique(labels$source), "Amazon Rekognition DetectLabels")
  expect_true(is.na(labels$tag[labels$path == "street_03.jpg"]))
  for (f in c("detect_labels.jsonl", "awsrekognition_labels.csv", "labels_response_only.csv")) {
    other <- read_rekognition(rekognition(f))
    expect_equal(basename(other$path), labels$path, info = f)
    expect_equal(other[c("tag", "confidence")], labels[c("tag", "confidence")], info = f)
  }
  single <- read_rekognition(rekognition("protest_01.jpg.json"))
  expect_equal(single, labels[1:4, ])
  both <- read_rekognition(rekognition(c("protest_01.jpg.json", "celebrities.json")))
  expect_equal(nrow(both), 4 + 4)
})

test_that("read_rekognition() reads celebrities, from JSON and the script's CSV", {
  skip_if_no_engine()
  want <- tibble::tibble(path = c("obama_speech.jpg", "summit_02.jpg", "summit_02.jpg", "crowd_03.jpg"),
                         tag = c("Barack Obama", "Barack Obama", "Joe Biden", NA),
                         confidence = c(0.99, 0.965, 0.8825, NA),
                         source = "Amazon Rekognition RecognizeCelebrities")
  expect_equal(read_rekognition(rekognition("celebrities.json")), want)
  expect_equal(read_rekognition(rekognition("awsrekognition_celeb_detect.csv")), want)
})

test_that("read_rekognition() refuses code and unknown files", {
  skip_if_no_engine()
  unsafe <- normalizePath(rekognition("unsafe.csv"))
  withr::local_dir(withr::local_tempdir())
  expect_error(read_rekognition(unsafe), "never evaluates code",
               class = "tidyvision_error_bad_tags")
  expect_false(file.exists("tidyvision-was-here"))
  expect_error(read_rekognition("nowhere.json"), class = "tidyvision_error_path_not_found")
  expect_error(read_rekognition(42), class = "tidyvision_error_bad_argument")
})

test_that("autotag() gives ImageNet tags for shipped photos", {
  skip_if_no_engine()
  photos <- system.file("extdata", "images", package = "tidyvision")
  paths <- file.path(photos, c("animals/chicken.jpg", "tools/hammer1.jpg"))
  tags <- autotag(paths, top_k = 3)
  expect_named(tags, c("path", "tag", "confidence", "source"))
  expect_equal(tags$path, rep(paths, each = 3))
  expect_equal(tags$tag[c(1, 4)], c("hen", "hammer"))
  expect_true(all(diff(tags$confidence[1:3]) <= 0))
  expect_equal(unique(tags$source), "efficientnet_lite0 (ImageNet-1k)")
  bad <- withr::local_tempfile(fileext = ".png")
  writeLines("no", bad)
  expect_warning(t2 <- autotag(c(paths[1], bad), top_k = 1), class = "tidyvision_warning_unreadable")
  expect_equal(t2$tag, c("hen", NA))
})

test_that("a detector that finds nothing gives NA tags and no warning", {
  found <- tibble::tibble(path = c("a.png", "b.png"), class = NA_character_, confidence = NA_real_)
  expect_no_warning(tags <- detector_tags(found, 5, "YOLO"))
  expect_equal(tags$path, c("a.png", "b.png"))
  expect_true(all(is.na(tags$tag) & is.na(tags$confidence)))
  skip_if_no_engine()
  empty <- shape_boxes()$path[is.na(shape_boxes()$class)]
  expect_no_warning(tags <- autotag(empty, model = shape_detector(), confidence = 0.99))
  expect_equal(tags$path, empty)
  expect_true(all(is.na(tags$tag)))
})

test_that("a detector tags each image once per class found", {
  skip_if_no_engine()
  shapes <- shape_boxes()
  fit <- shape_detector()
  paths <- shapes$path[c(1:6, 25)]
  found <- detect_objects(paths, model = fit, confidence = 0.05)
  tags <- autotag(paths, model = fit, top_k = 2, confidence = 0.05)
  expect_equal(unique(tags$path), paths)
  expect_equal(unique(tags$source), "YOLO detector (disc, square)")
  expect_false(anyDuplicated(tags[c("path", "tag")]) > 0)
  expect_true(all(table(tags$path) <= 2))
  for (p in paths) {
    mine <- found[found$path == p & !is.na(found$class), ]
    t <- tags[tags$path == p & !is.na(tags$tag), ]
    if (nrow(mine)) expect_equal(max(t$confidence), max(mine$confidence))
    else expect_true(is.na(tags$tag[tags$path == p]))
  }
})

test_that("autotag() shows a progress bar that reaches the end", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  paths <- dir(system.file("extdata", "images", "animals", package = "tidyvision"), full.names = TRUE)[1:3]
  expect_snapshot(tags <- autotag(paths, top_k = 1, verbose = TRUE), transform = scrub_progress)
  expect_equal(nrow(tags), 3)
})
