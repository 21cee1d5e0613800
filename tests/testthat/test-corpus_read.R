# read_corpus() and write_corpus_csv() under bad input: each odd input gets
# its own expectation, a classed error naming the argument or the file.

odd_outputs <- function() {
  dir <- file.path(tempdir(), "tv-odd-outputs")
  unlink(dir, recursive = TRUE)
  dir.create(dir)
  files <- list(zero = file.path(dir, "zero.sqlite"), text = file.path(dir, "notes.sqlite"),
                foreign = file.path(dir, "survey.sqlite"), corrupt = file.path(dir, "corrupt.sqlite"))
  file.create(files$zero)
  writeLines("id,answer\n1,yes", files$text)
  con <- DBI::dbConnect(RSQLite::SQLite(), files$foreign)
  DBI::dbWriteTable(con, "respondents", data.frame(id = 1:3, answer = c("yes", "no", "yes")))
  DBI::dbDisconnect(con)
  bytes <- readBin(files$foreign, "raw", file.size(files$foreign))
  bytes[101:4096] <- as.raw(0xff)  # the schema page
  writeBin(bytes, files$corrupt)
  c(files, dir = dir, gone = file.path(dir, "gone.sqlite"), unicode_gone = file.path(dir, "r\u00e9sultats-\u043a\u043e\u0440\u043f\u0443\u0441.sqlite"))
}

test_that("read_corpus() gives a classed error for each bad `output`", {
  f <- odd_outputs()
  expect_error(read_corpus(NULL), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(NA), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(NA_character_), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(42), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(character()), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(c(f$zero, f$text)), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(""), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(tibble::tibble()), "not a data frame", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(tibble::tibble(path = "a.jpg", .pred_class = "red")), "not a data frame",
               class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(f$gone), "Can't find", class = "tidyvision_error_path_not_found")
  expect_error(read_corpus(f$unicode_gone), "Can't find", class = "tidyvision_error_path_not_found")
  expect_error(read_corpus(f$dir), "is a folder", class = "tidyvision_error_bad_argument")
  expect_error(read_corpus(f$zero), "holds no tables", class = "tidyvision_error_not_a_corpus")
  expect_error(read_corpus(f$text), "not an SQLite database", class = "tidyvision_error_not_a_corpus")
  expect_error(read_corpus(f$foreign), "Its tables: respondents", class = "tidyvision_error_not_a_corpus")
  expect_error(read_corpus(f$corrupt), "is damaged.*delete it yourself", class = "tidyvision_error_corpus_corrupt")
  expect_error(read_corpus(f$foreign, counts = NA), "`counts` must be TRUE or FALSE",
               class = "tidyvision_error_bad_argument")
})

test_that("write_corpus_csv() gives a classed error for each bad `output`, `file` or `overwrite`", {
  f <- odd_outputs()
  csv <- file.path(f$dir, "out.csv")
  expect_error(write_corpus_csv(NULL, csv), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(NA, csv), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(42, csv), "`output` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(tibble::tibble(), csv), "not a data frame", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$gone, csv), "Can't find", class = "tidyvision_error_path_not_found")
  expect_error(write_corpus_csv(f$dir, csv), "is a folder", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$zero, csv), "holds no tables", class = "tidyvision_error_not_a_corpus")
  expect_error(write_corpus_csv(f$text, csv), "not an SQLite database", class = "tidyvision_error_not_a_corpus")
  expect_error(write_corpus_csv(f$foreign, csv), "respondents", class = "tidyvision_error_not_a_corpus")
  expect_error(write_corpus_csv(f$corrupt, csv), "is damaged", class = "tidyvision_error_corpus_corrupt")
  expect_error(write_corpus_csv(f$foreign, NULL), "`file` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$foreign, NA), "`file` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$foreign, 42), "`file` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$foreign, ""), "`file` must be the path", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$foreign, f$dir), "is a folder", class = "tidyvision_error_bad_argument")
  expect_error(write_corpus_csv(f$foreign, file.path(f$dir, "no", "such", "out.csv")), "does not exist",
               class = "tidyvision_error_path_not_found")
  expect_error(write_corpus_csv(f$foreign, f$text), "already exists", class = "tidyvision_error_exists")
  expect_error(write_corpus_csv(f$foreign, csv, overwrite = NA), "`overwrite` must be TRUE or FALSE",
               class = "tidyvision_error_bad_argument")
  expect_false(file.exists(csv))
  expect_equal(readLines(f$text), c("id,answer", "1,yes"))
})

test_that("a corpus output at a unicode path reads, exports and re-exports with overwrite = TRUE", {
  skip_if_no_engine()
  reference <- reference_run()
  out <- corpus_out("r\u00e9sultats-\u043a\u043e\u0440\u043f\u0443\u0441.sqlite")
  file.copy(corpus_out("reference.sqlite"), out, overwrite = TRUE)
  expect_identical(read_corpus(out), reference)
  csv <- file.path(dirname(out), "\u00e9tiquettes.csv")
  unlink(csv)
  expect_equal(write_corpus_csv(out, csv), csv)
  expect_equal(utils::read.csv(csv, encoding = "UTF-8")$path, reference$path)
  writeLines("old", csv)
  write_corpus_csv(out, csv, overwrite = TRUE)
  expect_equal(nrow(utils::read.csv(csv)), nrow(reference))
})

test_that("a corpus output with a damaged table is a classed error naming the file and what to do, which works", {
  skip_if_no_engine()
  reference <- reference_run()
  out <- corpus_out("damaged.sqlite")
  file.copy(corpus_out("reference.sqlite"), out, overwrite = TRUE)
  con <- DBI::dbConnect(RSQLite::SQLite(), out)
  root <- DBI::dbGetQuery(con, "SELECT rootpage FROM sqlite_master WHERE name = 'images'")$rootpage
  page <- DBI::dbGetQuery(con, "PRAGMA page_size")[[1]]
  DBI::dbDisconnect(con)
  bytes <- readBin(out, "raw", file.size(out))
  bytes[(root - 1) * page + seq_len(page)] <- as.raw(0xff)  # the images table's root page
  writeBin(bytes, out)
  expect_error(read_corpus(out), "damaged[.]sqlite.* is damaged.*backup.*overwrite = TRUE",
               class = "tidyvision_error_corpus_corrupt")
  expect_error(classify_folder(corpus_fit(), corpus_folder(), out, verbose = FALSE),
               "damaged[.]sqlite: it is damaged.*backup.*overwrite = TRUE", class = "tidyvision_error_corpus_corrupt")
  suppressWarnings(classify_folder(corpus_fit(), corpus_folder(), out, chunk_size = 8, batch_size = 8,
                                   overwrite = TRUE, verbose = FALSE))
  expect_identical(read_corpus(out), reference)
})

test_that("the errors for files that are not corpus outputs read as they should", {
  f <- odd_outputs()
  hide <- function(x) gsub(f$dir, "<dir>", x, fixed = TRUE)
  expect_snapshot(error = TRUE, transform = hide, {
    read_corpus(f$foreign)
    read_corpus(f$text)
    read_corpus(f$zero)
    read_corpus(f$corrupt)
  })
})
