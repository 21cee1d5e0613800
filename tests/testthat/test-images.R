test_that("image_files() lists every kind of odd and bad file, row by row", {
  skip_if_no_engine()
  root <- fixtures()$make_odd_folder(withr::local_tempdir())
  expect_warning(
    msg <- expect_message(imgs <- image_files(root), class = "tidyvision_message_skipped"),
    class = "tidyvision_warning_unreadable"
  )
  expect_named(imgs, c("path", "label", "split", "file_size", "width", "height",
                       "format", "readable", "problem"))
  expect_false(any(basename(imgs$path) %in% c("notes.txt", "clip.mp4")))
  row <- function(name) imgs[basename(imgs$path) == name, ]
  expect_equal(nrow(imgs), 19)
  # Files that are not images are named by kind, never dropped without a word.
  skipped <- msg$skipped
  expect_equal(basename(skipped$path), c("clip.mp4", "notes.txt"))
  expect_equal(skipped$kind, c("video", "other"))
  expect_match(conditionMessage(msg), "Skipped 2 files that are not an image: video (1 .mp4); other (1 .txt)",
               fixed = TRUE)
  # iPhone photos (HEIC) are images.
  expect_equal(row("iphone.heic")[c("width", "height", "format", "readable")],
               tibble::tibble(width = 60L, height = 40L, format = "HEIF", readable = TRUE))

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
  expect_match(msg, "5 images can't be read; kept with `readable = FALSE`")
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
  expect_error(image_files(c("a", "b")), "a", class = "tidyvision_error_path_not_found")
  expect_error(image_files(c(tempdir(), tempdir())), class = "tidyvision_error_bad_argument")
  expect_error(image_files(1), class = "tidyvision_error_bad_argument")
  expect_error(image_files(NA_character_), class = "tidyvision_error_bad_argument")
  expect_error(image_files(tempdir(), recursive = NA), class = "tidyvision_error_bad_argument")
})


test_that("macOS metadata files are skipped like other non-images", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 2L, size = 32L)
  # What unzipping a Mac's zip leaves: AppleDouble forks with image names.
  fork <- as.raw(c(0x00, 0x05, 0x16, 0x07, rep(0, 60)))
  dir.create(file.path(root, "__MACOSX", "red"), recursive = TRUE)
  writeBin(fork, file.path(root, "__MACOSX", "red", "._red_000.jpg"))
  writeBin(fork, file.path(root, "__MACOSX", "red", "red_000.jpg"))
  writeBin(fork, file.path(root, "red", "._red_000.jpg"))
  writeBin(fork, file.path(root, "red", ".DS_Store"))
  expect_no_warning(imgs <- image_files(root))
  expect_equal(nrow(imgs), 4)
  expect_true(all(imgs$readable))
  expect_setequal(unique(imgs$label), c("red", "blue"))
  expect_false(any(grepl("__MACOSX|/\\._|DS_Store", imgs$path)))
  files <- list.files(root, recursive = TRUE, full.names = TRUE, all.files = TRUE)
  expect_equal(image_files(files)$path, imgs$path)
})

test_that("a vector of files lists like their folder", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fx <- fixtures()
  fx$make_class_folder(root, n_per_class = 2L, size = 32L, split = "train")
  fx$make_class_folder(root, n_per_class = 1L, size = 32L, split = "val")
  imgs <- image_files(root)
  files <- image_files(rev(list.files(root, recursive = TRUE, full.names = TRUE)))
  expect_equal(files[order(files$path), ], imgs[order(imgs$path), ])
  one <- image_files(imgs$path[1])
  expect_equal(one$path, imgs$path[1])
  expect_true(one$readable)
  expect_true(is.na(one$label))
})

test_that("paths starting with ~ work in every verb", {
  skip_if_no_engine()
  home <- withr::local_tempdir()
  withr::local_envvar(HOME = home)
  fixtures()$make_class_folder(file.path(home, "photos"), n_per_class = 4L, size = 32L)
  imgs <- image_files("~/photos")
  expect_equal(nrow(imgs), 8)
  expect_true(all(startsWith(imgs$path, normalizePath(home))))
  tilde <- imgs
  tilde$path <- file.path("~/photos", imgs$label, basename(imgs$path))
  expect_equal(image_files(tilde$path)$path, imgs$path)
  expect_equal(find_duplicates(tilde, method = "exact", verbose = FALSE)$group, seq_len(8))
  expect_true(all(lengths(read_thumbnails(image_paths(tilde), 16L)) > 0))
  split <- split_images(tilde, prop = c(train = 0.5, val = 0.5))
  fit <- fine_tune(split, epochs = 1, image_size = 32, batch_size = 4, train_layers = "head")
  expect_equal(fit$n_train + fit$n_val, 8)
  pred <- predict(fit, tilde)
  expect_false(anyNA(pred$.pred_class))
  tags <- tibble::tibble(path = tilde$path, tag = tilde$label, confidence = 0.9)
  v <- validate_tags(tags, imgs, tag = "red", label = label, event = "red", times = 0)
  expect_equal(sum(v$confusion$n), 8)
  expect_equal(v$metrics$.estimate[v$metrics$.metric == "accuracy"], 1)
})

test_that("labels join from a table by file name or relative path", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 3L, size = 32L)
  folders <- image_files(root)
  names <- basename(folders$path)
  by_name <- data.frame(file = c(names[1:5], "ghost.jpg"), label = c("a", "b", "", NA, "a", "b"))
  expect_warning(imgs <- image_files(root, labels = by_name), class = "tidyvision_warning_unmatched_labels")
  expect_named(imgs, names(folders))
  expect_equal(imgs$path, folders$path)
  expect_equal(imgs$label, c("a", "b", NA, NA, "a", NA))
  w <- tryCatch(image_files(root, labels = by_name), tidyvision_warning_unmatched_labels = function(w) w)
  msg <- conditionMessage(w)
  expect_match(msg, "1 image file without a label row")
  expect_match(msg, names[6], fixed = TRUE)
  expect_match(msg, "1 label row naming no image file")
  expect_match(msg, "ghost.jpg", fixed = TRUE)

  # A CSV keyed by relative path, blank cells as NA, the label in another column.
  csv <- withr::local_tempfile(fileext = ".csv")
  rel <- file.path(folders$label, names)
  writeLines(c("path,coder,label", paste0(rel, ",", c("1", "", "07", "1", "2", "3"), ",x")), csv)
  csv_imgs <- expect_no_warning(image_files(root, labels = csv, label_col = "coder"))
  expect_equal(csv_imgs$label, c("1", NA, "07", "1", "2", "3"))
  expect_equal(image_files(root, labels = csv)$label, rep("x", 6))
  # Absolute paths are keys too, and a vector of files joins like its folder.
  abs <- data.frame(image = folders$path, label = folders$label)
  expect_equal(image_files(folders$path, labels = abs)$label, folders$label)
  expect_equal(image_files(folders$path, labels = data.frame(path = rel, label = "y"))$label, rep("y", 6))
})

test_that("bad label tables are classed errors", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 1L, size = 32L)
  expect_error(image_files(root, labels = data.frame(x = 1)), class = "tidyvision_error_missing_column")
  expect_error(image_files(root, labels = data.frame(file = "a.jpg", label = 1), by = "nope"),
               class = "tidyvision_error_missing_column")
  expect_error(image_files(root, labels = data.frame(file = "a.jpg", label = 1), label_col = "kind"),
               class = "tidyvision_error_missing_column")
  expect_error(image_files(root, labels = "no/such.csv"), class = "tidyvision_error_bad_argument")
  twice <- data.frame(file = c("red_000.jpg", "red_000.jpg"), label = c("a", "b"))
  expect_error(image_files(root, labels = twice), "more than one row", class = "tidyvision_error_duplicate_labels")
  dir.create(file.path(root, "more"))
  file.copy(file.path(root, "red", "red_000.jpg"), file.path(root, "more"))
  expect_error(image_files(root, labels = twice[1, ]), "more than one folder",
               class = "tidyvision_error_duplicate_labels")
})
