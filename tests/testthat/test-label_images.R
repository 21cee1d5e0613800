# The app's server logic through shiny::testServer(): each key must reach the
# label file at once. The same app in a real browser, killed mid-session, is
# tested in tests/python/test_label_app.py.

# Keys as the page sends them: its counter, the image it shows, the token.
press <- function(session, keys) {
  view <- session$userData$tv_view
  for (k in keys) {
    session$setInputs(key = list(key = k, n = view$n + 1, image = view$i, token = view$token))
  }
}

test_that("each key appends its row at once; undo, skip and arrows work", {
  imgs <- example_images()
  out <- withr::local_tempfile(fileext = ".csv")
  app <- label_app(imgs, c("animals", "buildings", "tools"), out, coder = "ana")
  shiny::testServer(app, {
    state <- session$userData$tv_view
    expect_equal(state$i, 1)
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "cat.jpg", fixed = TRUE)
    press(session, "1")
    expect_equal(label_rows(out)[, c("path", "coder", "action", "label")],
                 data.frame(path = imgs[1], coder = "ana", action = "label", label = "animals"))
    expect_equal(state$i, 2)
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "colosseum.jpg", fixed = TRUE)
    expect_match(output$image$html, "&amp;i=2", fixed = TRUE)
    press(session, "9")  # no class 9: nothing written
    expect_equal(nrow(label_rows(out)), 1)
    press(session, "s")
    expect_equal(label_rows(out)$action[2], "skip")
    expect_equal(state$i, 3)
    press(session, "u")
    expect_equal(unlist(label_rows(out)[3, c("path", "action")]), c(path = imgs[2], action = "undo"))
    expect_equal(state$i, 2)
    press(session, c("2", "ArrowLeft", "ArrowLeft", "ArrowLeft"))
    expect_equal(state$i, 1)
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "tv-label-class tv-on\" data-key=\"1", fixed = TRUE)
    press(session, c("ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight"))
    expect_equal(state$i, 4)
    press(session, "3")
    expect_equal(state$note, "That was the last image.")
    expect_equal(nrow(label_rows(out)), 5)
  })
  labs <- read_labels(out)
  expect_equal(labs$label, c("animals", "buildings", "tools"))
  expect_equal(labs$path, imgs[c(1, 2, 4)])
})

test_that("a new app resumes at this coder's first unlabelled image, and undo reaches back", {
  imgs <- example_images()
  out <- withr::local_tempfile(fileext = ".csv")
  classes <- c("animals", "buildings", "tools")
  st <- label_app(imgs, classes, out, coder = "ana")$tv_state
  for (k in c("1", "s", "3")) label_key(st, k)
  expect_equal(label_app(imgs, classes, out, coder = "ana")$tv_state$i, 4)
  expect_equal(label_app(imgs, classes, out, coder = "ben")$tv_state$i, 1)
  st <- label_app(imgs, classes, out, coder = "ana")$tv_state
  label_key(st, "u")
  expect_equal(st$i, 3)
  expect_equal(label_app(imgs, classes, out, coder = "ana")$tv_state$i, 3)
  for (k in c("2", "1")) label_key(st, k)
  # Every image done: a review round starts at the first.
  expect_equal(label_app(imgs, classes, out, coder = "ana")$tv_state$i, 1)
  # `order` (a ranked tibble with a path column) sets the queue.
  queue <- tibble::tibble(path = imgs[c(4, 2)], label_quality = c(0.1, 0.3))
  st <- label_app(imgs, classes, out, coder = "cy", order = queue)$tv_state
  expect_equal(st$paths, imgs[c(4, 2)])
  label_key(st, "2")
  expect_equal(read_labels(out, coder = "cy")$path, imgs[4])
})

test_that("multi mode toggles classes and writes them on Enter", {
  imgs <- example_images(2)
  out <- withr::local_tempfile(fileext = ".csv")
  app <- label_app(imgs, c("animals", "buildings", "tools"), out, coder = "ana", mode = "multi")
  shiny::testServer(app, {
    state <- session$userData$tv_view
    press(session, "Enter")
    expect_match(state$note, "at least one class")
    press(session, c("3", "1", "2", "2"))
    expect_false(file.exists(out) && nrow(label_rows(out)) > 0)
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "tv-label-class tv-on\" data-key=\"3", fixed = TRUE)
    press(session, "Enter")
    expect_equal(label_rows(out)$label, "animals|tools")
    expect_equal(state$i, 2)
    press(session, "ArrowLeft")
    expect_setequal(state$pending, c("animals", "tools"))
  })
  expect_equal(read_labels(out)$label, "animals|tools")
})

test_that("scores mode takes a 0-10 score per class by keys", {
  imgs <- example_images(3)
  out <- withr::local_tempfile(fileext = ".csv")
  classes <- c("protest", "violence", "police")
  app <- label_app(imgs, classes, out, coder = "ana", mode = "scores")
  shiny::testServer(app, {
    state <- session$userData$tv_view
    press(session, "7")
    expect_equal(label_rows(out)$label, "protest=7;violence=;police=")
    expect_equal(state$sel, 2)
    press(session, c("Tab", "t"))  # police = 10, then back to violence, the one left
    expect_equal(label_rows(out)$label[2], "protest=7;violence=;police=10")
    expect_equal(c(state$i, state$sel), c(1, 2))
    press(session, c("BackTab", "BackTab", "u"))
    expect_equal(label_rows(out)$action[3], "undo")
    expect_equal(unname(state$pending), c(7, NA, NA))
    press(session, c("ArrowDown", "0"))
    expect_equal(c(state$i, state$sel), c(1, 2))
    press(session, "2")
    expect_equal(state$i, 2)  # all scored: the next image
    press(session, c("4", "Enter"))
    expect_equal(label_rows(out)$label[7], "protest=4;violence=0;police=0")
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "Image 3 of 3", fixed = TRUE)
    press(session, "5")  # image 3 partly scored
  })
  labs <- read_labels(out)
  expect_equal(names(labs), c("path", "coder", classes, "skipped", "time"))
  expect_equal(labs$protest, c(7, 4, 5))
  expect_equal(labs$violence, c(2, 0, NA))
  expect_equal(labs$police, c(0, 0, NA))
  # A partly scored image is not done: the app resumes there.
  expect_equal(label_app(imgs, classes, out, coder = "ana", mode = "scores")$tv_state$i, 3)
})

test_that("bad arguments and foreign output files are classed errors; nothing is overwritten", {
  imgs <- example_images(2)
  classes <- c("animals", "buildings")
  foreign <- withr::local_tempfile(fileext = ".csv")
  utils::write.csv(data.frame(path = imgs, label = "x"), foreign, row.names = FALSE)
  before <- readLines(foreign)
  expect_error(label_app(imgs, classes, foreign), class = "tidyvision_error_labels_file")
  expect_snapshot(label_images(imgs, classes, foreign, coder = "ana"), error = TRUE,
                  transform = function(x) gsub(expand_paths(foreign), "<file>", x, fixed = TRUE))
  expect_equal(readLines(foreign), before)
  out <- withr::local_tempfile(fileext = ".csv")
  label_app(imgs, classes, out, coder = "ana")
  expect_error(label_app(imgs, c(classes, "tools"), out), class = "tidyvision_error_labels_file")
  expect_error(label_app(imgs, classes, out, mode = "multi"), class = "tidyvision_error_labels_file")
  expect_error(label_app(imgs, c("a", "a")), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, c("a|b", "c")), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, letters[1:10], out), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, c("path", "b"), mode = "scores"), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, classes, out, mode = "score"), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, classes, out, order = example_images(3)), class = "tidyvision_error_bad_argument")
  expect_error(label_app(imgs, classes, file.path(tempdir(), "no", "such", "dir.csv")),
               class = "tidyvision_error_path_not_found")
  expect_error(label_images(imgs, classes, out, coders = "ana"), class = "tidyvision_error_bad_argument")
})

test_that("label_images() checks each argument before starting, naming it", {
  imgs <- example_images(2)
  classes <- c("animals", "buildings")
  dir <- withr::local_tempdir()
  out <- file.path(dir, "labels.csv")
  bad_arg <- function(..., arg) {
    # An argument let through would start the app and block: a generous limit
    # turns that into a failure instead of a hung test.
    setTimeLimit(elapsed = 120, transient = TRUE)
    on.exit(setTimeLimit(elapsed = Inf))
    err <- expect_error(label_images(..., launch.browser = FALSE), class = "tidyvision_error_bad_argument")
    expect_match(conditionMessage(err), paste0("`", arg, "`"), fixed = TRUE)
  }
  bad_arg(imgs, classes, out, coder = "ana", port = -1, arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = 0, arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = 70000, arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = 80.5, arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = "x", arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = NA, arg = "port")
  bad_arg(imgs, classes, out, coder = "ana", port = 1:2, arg = "port")
  withr::with_dir(dir, bad_arg(imgs, classes, 42, coder = "ana", arg = "output"))
  expect_false(file.exists(file.path(dir, "42")))
  bad_arg(imgs, classes, NULL, coder = "ana", arg = "output")
  bad_arg(imgs, classes, NA_character_, coder = "ana", arg = "output")
  bad_arg(imgs, classes, "", coder = "ana", arg = "output")
  bad_arg(imgs, classes, c(out, out), coder = "ana", arg = "output")
  bad_arg(imgs, classes, dir, coder = "ana", arg = "output")
  bad_arg(imgs, classes, out, coder = NA_character_, arg = "coder")
  bad_arg(imgs, classes, out, coder = 42, arg = "coder")
  bad_arg(imgs, classes, out, coder = "", arg = "coder")
  bad_arg(imgs, NULL, out, coder = "ana", arg = "classes")
  bad_arg(imgs, NA_character_, out, coder = "ana", arg = "classes")
  bad_arg(imgs, 42, out, coder = "ana", arg = "classes")
  bad_arg(imgs, classes, out, coder = "ana", mode = NULL, arg = "mode")
  bad_arg(NULL, classes, out, coder = "ana", arg = "images")
  bad_arg(NA, classes, out, coder = "ana", arg = "images")
  bad_arg(42, classes, out, coder = "ana", arg = "images")
  bad_arg(character(), classes, out, coder = "ana", arg = "images")
  bad_arg(tibble::tibble(path = character()), classes, out, coder = "ana", arg = "images")
  bad_arg(imgs, classes, out, coder = "ana", order = 42, arg = "order")
  err <- expect_error(label_images(imgs, classes, out, coder = "ana", launch.browser = NA),
                      class = "tidyvision_error_bad_argument")
  expect_match(conditionMessage(err), "`launch.browser`", fixed = TRUE)
  expect_error(label_images(tibble::tibble(file = imgs), classes, out, coder = "ana", launch.browser = FALSE),
               class = "tidyvision_error_missing_column")
  expect_snapshot(label_images(imgs, classes, out, coder = "ana", port = -1, launch.browser = FALSE), error = TRUE)
  expect_snapshot(label_images(imgs, classes, dir, coder = "ana", launch.browser = FALSE), error = TRUE,
                  transform = function(x) gsub(dir, "<dir>", x, fixed = TRUE))
  # Nothing was started or created by a refused call.
  expect_false(file.exists(out))
})

test_that("missing files are an error; empty files and non-images are left out, named, and never served", {
  dir <- withr::local_tempdir()
  imgs <- example_images(2)
  classes <- c("animals", "buildings")
  out <- file.path(dir, "labels.csv")
  gone <- file.path(dir, "gone.jpg")
  err <- expect_error(label_app(c(imgs, gone), classes, out, coder = "ana"), class = "tidyvision_error_path_not_found")
  expect_match(conditionMessage(err), "gone.jpg", fixed = TRUE)
  expect_match(conditionMessage(err), "`images`", fixed = TRUE)
  empty <- file.path(dir, "empty.jpg")
  file.create(empty)
  text <- file.path(dir, "text.jpg")
  writeLines("not a photo", text)
  passwd <- file.path(dir, "passwd")
  writeLines("root:x:0:0:root:/root:/bin/bash", passwd)
  for (bad in c(empty, text, passwd)) {
    w <- expect_warning(app <- label_app(c(imgs, bad), classes, out, coder = "ana"), class = "tidyvision_warning_unreadable")
    expect_match(conditionMessage(w), basename(bad), fixed = TRUE)
    expect_equal(app$tv_state$paths, imgs)
  }
  w <- expect_warning(label_app(c(imgs, empty), classes, out, coder = "ana"), class = "tidyvision_warning_unreadable")
  expect_match(conditionMessage(w), "empty file")
  err <- expect_error(label_app(c(empty, text), classes, out, coder = "ana"), class = "tidyvision_error_unreadable")
  expect_match(conditionMessage(err), "text.jpg", fixed = TRUE)
  expect_error(label_app(imgs, classes, out, coder = "ana", order = c(imgs[1], gone)),
               class = "tidyvision_error_bad_argument")
})

test_that("unicode paths are labelled and served", {
  dir <- withr::local_tempdir()
  photo <- file.path(dir, "f\u00f6t\u00f6 \u732b.jpg")
  file.copy(example_images(1), photo)
  out <- file.path(dir, "l\u00e4bels.csv")
  a <- label_app(photo, "animals", out, coder = "j\u00fcrgen", port = 4321L)
  st <- a$tv_state
  served <- serve_image(st, list(QUERY_STRING = paste0("?t=", st$token, "&i=1"), HTTP_HOST = "127.0.0.1:4321"))
  expect_equal(served$status, 200L)
  expect_equal(served$content$file, expand_paths(photo))
  label_key(st, "1")
  labs <- read_labels(out)
  expect_equal(labs$path, expand_paths(photo))
  expect_equal(labs$coder, "j\u00fcrgen")
})

test_that("a label file deleted while the app runs stops the app; no headless file is left", {
  imgs <- example_images(3)
  out <- withr::local_tempfile(fileext = ".csv")
  st <- label_app(imgs, c("animals", "buildings", "tools"), out, coder = "ana")$tv_state
  label_key(st, "1")
  file.remove(out)
  expect_error(label_key(st, "2"), class = "tidyvision_error_labels_file")
  expect_false(file.exists(out))
  # Replaced by another file: not appended to either.
  writeLines(c("path,label", "x.jpg,cat"), out)
  expect_error(label_key(st, "u"), class = "tidyvision_error_labels_file")
  expect_equal(readLines(out), c("path,label", "x.jpg,cat"))
  # Through a key message: refused, and the error is handed to stopApp().
  v <- label_view(st)
  ack <- label_message(v, list(key = "1", n = 1, image = v$i, token = v$token))
  expect_false(ack$ok)
  expect_s3_class(ack$stop[[1]], "tidyvision_error_labels_file")
  expect_match(v$note, "deleted or replaced")
})

test_that("images that image_files() found unreadable are left out, with its reason", {
  imgs <- example_images(3)
  tbl <- tibble::tibble(path = imgs, readable = c(TRUE, FALSE, TRUE),
                        problem = c(NA, "truncated: image file is truncated", NA))
  out <- withr::local_tempfile(fileext = ".csv")
  w <- expect_warning(app <- label_app(tbl, c("animals", "buildings"), out, coder = "ana"),
                      class = "tidyvision_warning_unreadable")
  expect_match(conditionMessage(w), "colosseum.jpg: truncated", fixed = TRUE)
  expect_equal(app$tv_state$paths, imgs[c(1, 3)])
})
