test_that("image_files() lists every kind of odd and bad file, row by row", {
  skip_if_no_engine()
  root <- fixtures()$make_odd_folder(withr::local_tempdir())
  expect_warning(imgs <- image_files(root), class = "tidyvision_warning_unreadable")
  expect_named(imgs, c("path", "label", "split", "file_size", "width", "height",
                       "format", "readable", "problem"))
  expect_false(any(basename(imgs$path) == "notes.txt"))
  row <- function(name) imgs[basename(imgs$path) == name, ]
  expect_equal(nrow(imgs), 18)

  for (f in c("normal.jpg", "UPPER.JPG", "cmyk.jpg", "gray.png", "sixteen.png",
              "palette.gif", "alpha.png", "photo.webp", "photo.bmp", "photo.tiff",
              "a photo.png", "é.jpg")) {
    r <- row(f)
    expect_true(r$readable, label = f)
    expect_equal(c(r$width, r$height), c(60L, 40L), label = f)
    expect_true(is.na(r$problem), label = f)
  }
  expect_equal(row("rotated.jpg")[c("width", "height")], tibble::tibble(width = 40L, height = 60L))
  expect_equal(row("cmyk.jpg")$format, "JPEG")
  expect_equal(row("photo.webp")$format, "WEBP")
  expect_equal(row("a photo.png")$label, "with space")
  expect_equal(row("é.jpg")$label, "ñandú")
  expect_true(file.exists(row("é.jpg")$path))
  expect_equal(row("normal.jpg")$label, "cat")
  expect_true(all(is.na(imgs$split)))

  expect_match(row("truncated.jpg")$problem, "truncated")
  expect_match(row("truncated.png")$problem, "truncated")
  expect_match(row("empty.jpg")$problem, "empty")
  expect_equal(row("empty.jpg")$file_size, 0)
  expect_match(row("text.png")$problem, "not an image")
  expect_match(row("bomb.bmp")$problem, "decompression bomb")
  bad <- c("truncated.jpg", "truncated.png", "empty.jpg", "text.png", "bomb.bmp")
  expect_setequal(basename(imgs$path[!imgs$readable]), bad)
})

test_that("the warning names each unreadable file once", {
  skip_if_no_engine()
  root <- fixtures()$make_odd_folder(withr::local_tempdir())
  w <- tryCatch(image_files(root), tidyvision_warning_unreadable = function(w) w)
  msg <- conditionMessage(w)
  expect_match(msg, "5 image files can't be read")
  for (f in c("truncated.jpg", "truncated.png", "empty.jpg", "text.png", "bomb.bmp")) {
    expect_match(msg, f, fixed = TRUE)
  }
})

test_that("labels and splits come from folders", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fx <- fixtures()
  fx$make_class_folder(root, n_per_class = 2L, split = "train")
  fx$make_class_folder(root, n_per_class = 1L, split = "val")
  fx$make_class_folder(root, n_per_class = 1L, split = "test")
  imgs <- image_files(root)
  expect_equal(nrow(imgs), 8)
  expect_equal(as.vector(table(imgs$split)[c("train", "val", "test")]), c(4, 2, 2))
  expect_setequal(unique(imgs$label), c("red", "blue"))
  expect_true(all(imgs$readable))
  expect_equal(nrow(image_files(file.path(root, "train"), recursive = FALSE)), 0) |>
    expect_warning(class = "tidyvision_warning_no_images")
})

test_that("bad paths are classed errors", {
  expect_snapshot(image_files("no/such/folder"), error = TRUE,
                  transform = function(x) gsub(getwd(), "<wd>", x, fixed = TRUE))
  expect_error(image_files("no/such/folder"), class = "tidyvision_error_path_not_found")
  file <- withr::local_tempfile(fileext = ".jpg")
  writeLines("x", file)
  expect_error(image_files(file), class = "tidyvision_error_not_a_directory")
  expect_error(image_files(c("a", "b")), class = "tidyvision_error_bad_argument")
  expect_error(image_files(tempdir(), recursive = NA), class = "tidyvision_error_bad_argument")
})
