# detect_faces(), count_faces() ------------------------------------------------

test_that("detect_faces() puts a box on each shipped face, inside the image", {
  skip_if_no_engine()
  faces <- detect_faces(face_photos())
  expect_named(faces, c("path", "face", "confidence", "xmin", "ymin", "xmax", "ymax",
                        "image_width", "image_height", "score", "problem"))
  expect_equal(faces$path, unname(face_photos()))
  expect_equal(faces$face, rep(1L, 5))
  expect_true(all(faces$confidence > 0.7 & faces$confidence < 1))
  expect_equal(faces$confidence, plogis(faces$score))
  expect_true(all(faces$xmin >= 0 & faces$xmax <= faces$image_width & faces$xmin < faces$xmax))
  expect_true(all(faces$ymin >= 0 & faces$ymax <= faces$image_height & faces$ymin < faces$ymax))
  expect_equal(c(faces$image_width[1], faces$image_height[1]), c(512L, 512L))
  expect_gt(iou(box_of(faces, 1), astronaut_face), 0.5)
  expect_equal(count_faces(faces), tibble::tibble(path = unname(face_photos()), n = rep(1L, 5)))
})

test_that("dlib's weak false hit on the astronaut's suit is dropped by default", {
  skip_if_no_engine()
  loose <- detect_faces(face_photo("astronaut_collins"), confidence = 0.5)
  expect_equal(loose$face, 1:2)
  expect_lt(loose$confidence[2], 0.6)
  expect_lt(iou(box_of(loose, 2), astronaut_face), 0.1)
  expect_equal(count_faces(loose)$n, 2L)
  expect_equal(count_faces(loose, confidence = 0.6)$n, 1L)
})

test_that("a 53 px face and a row of 44 px faces are found with the default upsampling", {
  skip_if_no_engine()
  small <- detect_faces(face_photo("obama_small_face"))
  expect_equal(small$face, 1L)
  expect_true(small$xmax - small$xmin >= 40 && small$xmax - small$xmin <= 60)
  expect_true(is.na(detect_faces(face_photo("obama_small_face"), upsample = 0)$face))

  # Five people's faces scaled to 44 px wide, side by side in one image.
  known <- detect_faces(face_photos())
  crowd <- file.path(withr::local_tempdir(), "crowd.jpg")
  truth <- fixtures()$face_crowd(as.list(known$path), lapply(seq_len(5), function(i) box_of(known, i)),
                                 crowd, face_width = 44L)
  found <- detect_faces(crowd)
  expect_equal(nrow(found), 5)
  best <- vapply(truth, function(t) max(vapply(1:5, function(i) iou(box_of(found, i), unlist(t)), 0)), 0)
  expect_true(all(best > 0.5), label = paste(round(best, 2), collapse = " "))
})

test_that("boxes are in pixels of the image as displayed (EXIF rotation applied)", {
  skip_if_no_engine()
  rotated <- fixtures()$exif_rotated_copy(face_photo("astronaut_collins"),
                                          file.path(withr::local_tempdir(), "rotated.jpg"))
  faces <- detect_faces(c(face_photo("astronaut_collins"), rotated))
  expect_gt(iou(box_of(faces, 1), box_of(faces, 2)), 0.8)
})

test_that("an unreadable image or one without a face never stops a folder", {
  skip_if_no_engine()
  dir <- withr::local_tempdir()
  file.copy(face_photo("biden"), dir)
  file.copy(system.file("extdata", "images", "buildings", "eiffel_tower.jpg", package = "tidyvision"), dir)
  writeLines("not an image", file.path(dir, "notes.jpg"))
  file.create(file.path(dir, "empty.png"))
  paths <- sort(list.files(dir, full.names = TRUE))
  expect_warning(faces <- detect_faces(paths), "2 images can't be read",
                 class = "tidyvision_warning_unreadable")
  counts <- count_faces(faces)
  expect_equal(counts$path, paths)
  expect_equal(counts$n, c(1L, 0L, NA, NA))
  expect_match(faces$problem[basename(faces$path) == "notes.jpg"], "not an image Pillow can read")
  expect_equal(count_faces(faces, confidence = 0.99)$n, c(0L, 0L, NA, NA))
})

test_that("the CNN detector finds a face where HOG does", {
  skip_if_no_engine()
  # The CNN is slow on a CPU: one small photo, no upsampling.
  cnn <- detect_faces(face_photo("obama_speech"), model = "cnn", upsample = 0)
  expect_equal(cnn$face, 1L)
  expect_gt(cnn$confidence, 0.6)
  expect_gt(iou(box_of(cnn), box_of(detect_faces(face_photo("obama_speech")))), 0.5)
})

test_that("detect_faces() shows a progress bar that reaches the end", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  expect_snapshot(found <- detect_faces(face_photos()[1:2], model = "hog", verbose = TRUE),
                  transform = scrub_progress)
  expect_equal(unique(found$path), unname(face_photos()[1:2]))
})

# crop_faces() ---------------------------------------------------------------

test_that("crop_faces() writes one file per face and refuses to overwrite", {
  skip_if_no_engine()
  expect_warning(faces <- detect_faces(c(face_photos()[1:2], "no/such/file.jpg"), confidence = 0.5),
                 class = "tidyvision_warning_unreadable")
  dir <- file.path(withr::local_tempdir(), "crops")
  crops <- crop_faces(faces, dir, size = 64)
  expect_equal(basename(crops$crop),
               c("astronaut_collins_face1.jpg", "astronaut_collins_face2.jpg", "biden_face1.jpg", NA))
  expect_true(all(file.exists(crops$crop[1:3])))
  expect_equal(dim(pixels(crops$crop[1])), c(64, 64, 3))
  natural <- crop_faces(faces[3, ], file.path(dir, "natural"), margin = 0)
  expect_equal(dim(pixels(natural$crop)), c(76, 76, 3))

  before <- tools::md5sum(crops$crop[1:3])
  expect_snapshot(crop_faces(faces, dir), error = TRUE,
                  transform = function(x) gsub(dir, "<dir>", x, fixed = TRUE))
  expect_error(crop_faces(faces, dir), class = "tidyvision_error_exists")
  expect_equal(tools::md5sum(crops$crop[1:3]), before)
  expect_equal(crop_faces(faces, dir, size = 32, overwrite = TRUE)$crop, crops$crop)
  expect_equal(dim(pixels(crops$crop[1])), c(32, 32, 3))
})

# face_embeddings() ------------------------------------------------------------

test_that("augmented copies of one face embed close together and far from another face", {
  skip_if_no_engine()
  faces <- face_variants()
  expect_equal(dim(faces$embedding), c(15L, 128L))
  expect_equal(faces$face, rep(1L, 15))
  d <- as.matrix(dist(faces$embedding))
  same <- outer(faces$who, faces$who, "==")
  expect_lt(max(d[same]), 0.6)
  expect_gt(min(d[!same]), 0.6)
})

test_that("face_embeddings() keeps rows without a face, as NA", {
  skip_if_no_engine()
  eiffel <- system.file("extdata", "images", "buildings", "eiffel_tower.jpg", package = "tidyvision")
  faces <- face_embeddings(c(eiffel, face_photo("biden")))
  expect_equal(nrow(faces$embedding), 2)
  expect_true(all(is.na(faces$embedding[1, ])))
  expect_false(anyNA(faces$embedding[2, ]))
  expect_equal(faces$embedding[2, ], face_variants()$embedding[6, ], tolerance = 1e-6)
})

# anonymize_faces() ------------------------------------------------------------

test_that("anonymised pixels inside the box change and those outside do not", {
  skip_if_no_engine()
  dir <- withr::local_tempdir()
  dir.create(file.path(dir, "in"))
  src <- fixtures()$write_copy(face_photo("obama_speech"), file.path(dir, "in", "speech.png"), "png")
  faces <- detect_faces(src)
  before <- pixels(src)
  for (method in c("blur", "pixelate", "fill")) {
    done <- anonymize_faces(faces, file.path(dir, method), method = method, margin = 0)
    expect_equal(done$status, "faces_obscured")
    after <- pixels(done$output)
    inside <- matrix(FALSE, nrow(before), ncol(before))
    inside[(faces$ymin + 1):faces$ymax, (faces$xmin + 1):faces$xmax] <- TRUE
    changed <- apply(abs(after - before), c(1, 2), sum)
    expect_true(all(changed[!inside] == 0), label = method)
    expect_gt(mean(changed[inside] > 0), 0.8)
    expect_true(is.na(detect_faces(done$output, confidence = 0.5)$face), label = method)
  }
  expect_equal(pixels(src), before)
})

test_that("anonymize_faces() reports every image, keeps originals and refuses to overwrite", {
  skip_if_no_engine()
  dir <- withr::local_tempdir()
  src <- file.path(dir, "in")
  dir.create(file.path(src, "sub"), recursive = TRUE)
  file.copy(face_photo("biden"), src)
  file.copy(face_photo("obama_small_face"), file.path(src, "sub"))
  file.copy(system.file("extdata", "images", "buildings", "eiffel_tower.jpg", package = "tidyvision"), src)
  writeLines("not an image", file.path(src, "notes.jpg"))
  paths <- sort(list.files(src, full.names = TRUE, recursive = TRUE))
  originals <- tools::md5sum(paths)
  out <- file.path(dir, "out")
  # HOG: this test is about reporting; the default detector is tested below.
  expect_warning(done <- anonymize_faces(paths, out, model = "hog", upsample = 1), "1 image can't be read",
                 class = "tidyvision_warning_unreadable")
  expect_named(done, c("path", "output", "n_faces", "status", "problem"))
  expect_equal(done$path, paths)
  expect_equal(done$status, c("faces_obscured", "no_face_found", "unreadable", "faces_obscured"))
  expect_equal(done$n_faces, c(1L, 0L, NA, 1L))
  expect_equal(done$output, c(file.path(out, c("biden.jpg", "eiffel_tower.jpg")), NA,
                              file.path(out, "sub", "obama_small_face.jpg")))
  expect_true(all(file.exists(done$output[-3])))
  expect_equal(tools::md5sum(paths), originals)
  expect_equal(sort(list.files(out, recursive = TRUE, all.files = TRUE)),
               c("biden.jpg", "eiffel_tower.jpg", "sub/obama_small_face.jpg"))

  written <- tools::md5sum(done$output[-3])
  expect_error(anonymize_faces(paths, out), class = "tidyvision_error_exists")
  expect_equal(tools::md5sum(done$output[-3]), written)
  expect_error(anonymize_faces(paths, src, overwrite = TRUE), class = "tidyvision_error_bad_argument")
  expect_equal(tools::md5sum(paths), originals)
  again <- anonymize_faces(paths[-3], out, method = "fill", overwrite = TRUE, model = "hog", upsample = 1)
  expect_equal(again$status, c("faces_obscured", "no_face_found", "faces_obscured"))
})

test_that("by default anonymize_faces() finds small faces HOG misses, and counts what it obscured", {
  skip_if_no_engine()
  dir <- withr::local_tempdir()
  known <- detect_faces(face_photos()[2:5])
  crowd <- file.path(dir, "crowd", "crowd.png")
  dir.create(dirname(crowd))
  # Four faces 24 px wide: below HOG's 40 px at upsample 1, above the CNN's 20 at 2.
  truth <- fixtures()$face_crowd(as.list(known$path), lapply(1:4, function(i) box_of(known, i)),
                                 crowd, face_width = 24L, gap = 8L)
  hog <- count_faces(detect_faces(crowd, model = "hog", upsample = 1))$n
  done <- anonymize_faces(crowd, file.path(dir, "out"), margin = 0.2)
  expect_gt(done$n_faces, hog)
  expect_gte(done$n_faces, 3)
  expect_equal(done$status, "faces_obscured")
  changed <- apply(abs(pixels(done$output) - pixels(crowd)), c(1, 2), sum)
  blurred <- vapply(truth, function(b) {
    b <- round(unlist(b))
    mean(changed[(b[2] + 1):b[4], (b[1] + 1):b[3]] > 0) > 0.5
  }, logical(1))
  expect_equal(sum(blurred), done$n_faces)
  p <- plot_faces(done)
  expect_equal(levels(ggplot2::ggplot_build(p)$layout$layout$.panel),
               paste0("crowd.png\n", done$n_faces, " faces obscured"))
})

test_that("anonymize_faces() obscures exactly the boxes it is given", {
  skip_if_no_engine()
  dir <- withr::local_tempdir()
  src <- fixtures()$write_copy(face_photo("biden"), file.path(dir, "biden.png"), "png")
  boxes <- tibble::tibble(path = c(src, src), xmin = c(0, NA), ymin = c(0, NA),
                          xmax = c(20, NA), ymax = c(10, NA))
  done <- anonymize_faces(boxes, file.path(dir, "out"), method = "fill", margin = 0)
  expect_equal(done$n_faces, 1L)
  after <- pixels(done$output)
  expect_true(all(after[1:10, 1:20, ] == 0))
  expect_equal(after[-(1:10), , ], pixels(src)[-(1:10), , ])
})

# Errors ---------------------------------------------------------------------

test_that("bad arguments are classed errors that say what to do", {
  expect_snapshot(error = TRUE, {
    detect_faces(1)
    detect_faces("a.jpg", model = "yolo")
    detect_faces("a.jpg", upsample = 5)
    detect_faces("a.jpg", confidence = 1)
    count_faces(tibble::tibble(path = "a.jpg"))
    crop_faces("a.jpg", tempdir())
    anonymize_faces("a.jpg", c("x", "y"))
    face_embeddings(tibble::tibble(path = "a", xmin = 1, ymin = 1, xmax = 2, ymax = 2), num_jitters = -1)
  })
  expect_error(detect_faces("a.jpg", upsample = 0.5), class = "tidyvision_error_bad_argument")
  expect_error(count_faces(list()), class = "tidyvision_error_bad_argument")
  expect_error(crop_faces(tibble::tibble(path = "a"), tempdir()), class = "tidyvision_error_missing_column")
  file <- withr::local_tempfile()
  writeLines("x", file)
  expect_error(anonymize_faces("a.jpg", file), class = "tidyvision_error_not_a_directory")
})

test_that("copies keep the images' sub-folders below their common parent", {
  expect_equal(mirror_paths(c("/data/a/x.jpg", "/data/b/x.jpg"), "/out"),
               c("/out/a/x.jpg", "/out/b/x.jpg"))
  expect_equal(mirror_paths("/data/a/x.jpg", "/out"), "/out/x.jpg")
  expect_equal(common_parent(c("/data/a", "/data/ab")), "/data")
})
