# The shipped face photos (inst/extdata/faces; sources in its README) and
# copies made from them, detected and embedded once for the face tests.
face_cache <- new.env()

face_photo <- function(name) {
  system.file("extdata", "faces", paste0(name, ".jpg"), package = "tidyvision", mustWork = TRUE)
}

face_photos <- function() {
  vapply(c("astronaut_collins", "biden", "obama_portrait", "obama_small_face", "obama_speech"),
         face_photo, character(1))
}

# Eileen Collins' face in scikit-image's 512 x 512 astronaut photo (shipped
# at that size), by eye.
astronaut_face <- c(xmin = 160, ymin = 60, xmax = 260, ymax = 190)

# Augmented copies of three people's photos: mirrored, brighter, darker,
# turned and cropped.
face_variants <- function() {
  if (is.null(face_cache$variants)) {
    root <- file.path(tempdir(), "tv-face-variants")
    unlink(root, recursive = TRUE)
    fx <- fixtures()
    paths <- unlist(lapply(c("astronaut_collins", "biden", "obama_portrait"), function(name) {
      c(face_photo(name), unlist(fx$face_variants(face_photo(name), root)))
    }))
    faces <- face_embeddings(paths, verbose = FALSE)
    faces$who <- sub("[_.].*", "", basename(faces$path))
    face_cache$variants <- faces
  }
  face_cache$variants
}

iou <- function(a, b) {
  w <- max(0, min(a[3], b[3]) - max(a[1], b[1]))
  h <- max(0, min(a[4], b[4]) - max(a[2], b[2]))
  inter <- w * h
  inter / ((a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter)
}

box_of <- function(faces, i = 1) unlist(faces[i, c("xmin", "ymin", "xmax", "ymax")])

# Decoded RGB pixels (height x width x 3, 0-255) of an image file.
pixels <- function(path) {
  # NumPy 2 arrays cross through the engine's bridge (reticulate 1.28 can't convert them).
  tidyvision:::from_py(tidyvision:::engine$bridge$to_r(fixtures(convert = FALSE)$pixels(path)))
}
