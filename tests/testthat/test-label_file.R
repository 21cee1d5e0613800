# The label file: written by append_label_row(), replayed by read_labels().

label_file <- function(rows, mode = "classes", classes = c("cat", "dog")) {
  file <- withr::local_tempfile(fileext = ".csv", .local_envir = parent.frame())
  meta <- jsonlite::toJSON(list(version = 1L, mode = mode, classes = I(classes)), auto_unbox = TRUE)
  writeLines(c(paste("#tidyvision-labels", meta), "path,coder,action,label,time", rows), file)
  file
}

row_of <- function(path, coder, action, label = NA, second = 0) {
  time <- format(as.POSIXct("2024-05-01 10:00:00", tz = "UTC") + second, "%Y-%m-%dT%H:%M:%OS3Z", tz = "UTC")
  f <- c(path, coder, action, label, time)
  paste(ifelse(is.na(f), "", paste0('"', f, '"')), collapse = ",")
}

test_that("the last action per path and coder wins; undo cancels the one before", {
  file <- label_file(c(
    row_of("/a.jpg", "ana", "label", "cat", 1),
    row_of("/a.jpg", "ana", "label", "dog", 2),
    row_of("/b.jpg", "ana", "label", "dog", 3),
    row_of("/b.jpg", "ana", "label", "cat", 4),
    row_of("/b.jpg", "ana", "undo", NA, 5),
    row_of("/c.jpg", "ana", "label", "cat", 6),
    row_of("/c.jpg", "ana", "undo", NA, 7),
    row_of("/c.jpg", "ana", "undo", NA, 8),  # nothing left to undo
    row_of("/a.jpg", "ben", "label", "cat", 9),
    row_of("/b.jpg", "ben", "skip", NA, 10),
    row_of("/a.jpg", "ana", "undo", NA, 11),
    row_of("/a.jpg", "ana", "undo", NA, 12),
    row_of("/a.jpg", "ana", "label", "cat", 13)
  ))
  labs <- read_labels(file)
  expect_equal(names(labs), c("path", "coder", "label", "skipped", "time"))
  key <- paste(labs$coder, labs$path)
  expect_setequal(key, c("ana /a.jpg", "ana /b.jpg", "ben /a.jpg", "ben /b.jpg"))
  lab <- stats::setNames(labs$label, key)
  expect_equal(lab[["ana /a.jpg"]], "cat")
  expect_equal(lab[["ana /b.jpg"]], "dog")
  expect_equal(lab[["ben /a.jpg"]], "cat")
  expect_true(is.na(lab[["ben /b.jpg"]]))
  expect_equal(labs$skipped, key == "ben /b.jpg")
  expect_equal(labs$time[key == "ana /a.jpg"], as.POSIXct("2024-05-01 10:00:13", tz = "UTC"))
  expect_s3_class(labs$time, "POSIXct")
  expect_equal(read_labels(file, coder = "ben")$path, c("/a.jpg", "/b.jpg"))
  expect_equal(nrow(read_labels(file, coder = "cy")), 0)
})

test_that("rows written by the app read back, with quotes and commas in paths", {
  dir <- withr::local_tempdir()
  out <- open_label_file(file.path(dir, "labels.csv"), "classes", c("cat", "dog"), NULL)
  odd <- file.path(dir, 'a "quoted", file.jpg')
  append_label_row(out, odd, "ana", "label", "dog")
  append_label_row(out, odd, "o'neil", "skip")
  labs <- read_labels(out)
  expect_equal(labs$path, c(odd, odd))
  expect_equal(labs$coder, c("ana", "o'neil"))
  expect_equal(labs$label, c("dog", NA))
  expect_lt(abs(as.numeric(difftime(labs$time[1], Sys.time(), units = "secs"))), 60)
})

test_that("scores become one numeric column per class", {
  file <- label_file(c(
    row_of("/a.jpg", "ana", "label", "cat=7;dog=", 1),
    row_of("/a.jpg", "ana", "label", "cat=7;dog=10", 2),
    row_of("/b.jpg", "ana", "label", "cat=0;dog=0", 3),
    row_of("/c.jpg", "ana", "skip", NA, 4)
  ), mode = "scores")
  labs <- read_labels(file)
  expect_equal(names(labs), c("path", "coder", "cat", "dog", "skipped", "time"))
  expect_equal(labs$cat, c(7, 0, NA))
  expect_equal(labs$dog, c(10, 0, NA))
  expect_equal(labs$skipped, c(FALSE, FALSE, TRUE))
})

test_that("foreign, damaged or edited files are classed errors naming the file", {
  foreign <- withr::local_tempfile(fileext = ".csv")
  utils::write.csv(data.frame(path = "/a.jpg", label = "cat"), foreign, row.names = FALSE)
  expect_error(read_labels(foreign), class = "tidyvision_error_labels_file")
  empty <- withr::local_tempfile(fileext = ".csv")
  file.create(empty)
  expect_error(read_labels(empty), class = "tidyvision_error_labels_file")
  bad_json <- withr::local_tempfile(fileext = ".csv")
  writeLines(c("#tidyvision-labels {mode: classes", "path,coder,action,label,time"), bad_json)
  expect_error(read_labels(bad_json), class = "tidyvision_error_labels_file")
  expect_error(read_labels(label_file(row_of("/a.jpg", "ana", "relabel", "cat"))),
               class = "tidyvision_error_labels_file")
  expect_error(read_labels(label_file('"/a.jpg","ana","label","cat","yesterday"')),
               class = "tidyvision_error_labels_file")
  expect_snapshot(read_labels(label_file(c(row_of("/a.jpg", "ana", "label", "cat"),
                                           row_of("/b.jpg", "ana", "label", "cow")))),
                  error = TRUE, transform = function(x) sub("'.*'", "<file>", x))
  expect_error(read_labels(label_file(row_of("/a.jpg", "ana", "label", "cat|cow"), mode = "multi")),
               class = "tidyvision_error_unknown_label")
  expect_error(read_labels(label_file(row_of("/a.jpg", "ana", "label", "cat=11;dog=0"), mode = "scores")),
               class = "tidyvision_error_unknown_label")
  expect_error(read_labels(label_file(row_of("/a.jpg", "ana", "label", "cat=1"), mode = "scores")),
               class = "tidyvision_error_unknown_label")
  expect_error(read_labels(file.path(tempdir(), "none.csv")), class = "tidyvision_error_path_not_found")
  expect_error(read_labels(foreign, coder = 1), class = "tidyvision_error_bad_argument")
})

test_that("a row cut short when R died is dropped, and the app's next row starts a new line", {
  file <- label_file(row_of("/a.jpg", "ana", "label", "cat"))
  cat('"/b.jpg","ana","lab', file = file, append = TRUE)
  expect_warning(labs <- read_labels(file), class = "tidyvision_warning_labels_file")
  expect_equal(labs$path, "/a.jpg")
  expect_warning(open_label_file(file, "classes", c("cat", "dog"), NULL), class = "tidyvision_warning_labels_file")
  append_label_row(file, "/b.jpg", "ana", "label", "dog")
  expect_equal(read_labels(file)$label, c("cat", "dog"))
})

test_that("a whole last row without its newline (as some editors save) is kept, and the app appends after it", {
  file <- label_file(row_of("/a.jpg", "ana", "label", "cat", 1))
  cat(row_of("/b.jpg", "ana", "label", "dog", 2), file = file, append = TRUE)
  before <- readLines(file, warn = FALSE)
  expect_no_warning(labs <- read_labels(file))
  expect_equal(labs$path, c("/a.jpg", "/b.jpg"))
  expect_no_warning(open_label_file(file, "classes", c("cat", "dog"), NULL))
  expect_equal(readLines(file), before)  # nothing rewritten: only the newline added
  append_label_row(file, "/c.jpg", "ana", "label", "cat")
  expect_equal(read_labels(file)$label, c("cat", "dog", "cat"))
  # Unquoted, as a spreadsheet might save it.
  bare <- label_file('"/a.jpg","ana","label","cat","2024-05-01T10:00:00.000Z"')
  cat("/b.jpg,ana,skip,,2024-05-01T10:00:01.000Z", file = bare, append = TRUE)
  expect_equal(read_labels(bare)$skipped, c(FALSE, TRUE))
  # A header with no rows and no final newline: the first row starts its own line.
  empty <- label_file(character())
  header <- paste(readLines(empty), collapse = "\n")
  cat(header, file = empty)
  expect_false(ends_with_newline(empty))
  open_label_file(empty, "classes", c("cat", "dog"), NULL)
  append_label_row(empty, "/a.jpg", "ana", "label", "dog")
  expect_equal(read_labels(empty)$label, "dog")
})

test_that("a last row cut anywhere is not taken for a whole one", {
  whole <- row_of("/b.jpg", "ana", "label", "dog", 2)
  for (cut in c(5, 20, 26, nchar(whole) - 6, nchar(whole) - 1)) {
    file <- label_file(row_of("/a.jpg", "ana", "label", "cat", 1))
    cat(substr(whole, 1, cut), file = file, append = TRUE)
    expect_warning(labs <- read_labels(file), class = "tidyvision_warning_labels_file")
    expect_equal(labs$path, "/a.jpg", label = substr(whole, 1, cut))
  }
})

test_that("read_labels() under bad input: a classed error naming the argument, or the labels", {
  for (bad in list(NULL, NA, NA_character_, 42, "", c("a.csv", "b.csv"), data.frame(path = "a.csv"))) {
    err <- expect_error(read_labels(bad), class = "tidyvision_error_bad_argument")
    expect_match(conditionMessage(err), "`output`", fixed = TRUE)
  }
  dir <- withr::local_tempdir()
  err <- expect_error(read_labels(dir), class = "tidyvision_error_bad_argument")
  expect_match(conditionMessage(err), "folder")
  expect_error(read_labels(file.path(dir, "none.csv")), class = "tidyvision_error_path_not_found")
  empty <- file.path(dir, "empty.csv")
  file.create(empty)
  expect_error(read_labels(empty), class = "tidyvision_error_labels_file")
  jpg <- file.path(dir, "photo.jpg")
  writeLines("just text", jpg)
  expect_error(read_labels(jpg), class = "tidyvision_error_labels_file")
  photo <- file.path(dir, "cat.jpg")
  file.copy(example_images(1), photo)
  expect_error(read_labels(photo), class = "tidyvision_error_labels_file")
  file <- label_file(row_of("/a.jpg", "ana", "label", "cat"))
  for (bad in list(NA, NA_character_, 42, TRUE)) {
    err <- expect_error(read_labels(file, coder = bad), class = "tidyvision_error_bad_argument")
    expect_match(conditionMessage(err), "`coder`", fixed = TRUE)
  }
  # Unicode in the file's path, the image paths and the coder.
  uni <- file.path(dir, "l\u00e4bels \u732b.csv")
  out <- open_label_file(uni, "classes", c("cat", "dog"), NULL)
  append_label_row(out, "/f\u00f6t\u00f6/\u732b.jpg", "j\u00fcrgen", "label", "cat")
  labs <- read_labels(uni, coder = "j\u00fcrgen")
  expect_equal(labs$path, "/f\u00f6t\u00f6/\u732b.jpg")
  expect_equal(labs$label, "cat")
})
