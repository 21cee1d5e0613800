# The shipped photos (3 classes x ~30) with their folder as the true label,
# and the embedding size the labelling tests share (embedded once per session).
LABEL_IMAGE_SIZE <- 128

shipped_photos <- function() {
  image_files(system.file("extdata", "images", package = "tidyvision"))[c("path", "label")]
}

# `imgs` with round(10%) of labels flipped to another class (seeded); `flip`
# marks them.
flip_labels <- function(imgs, seed, share = 0.1) {
  withr::with_seed(seed, {
    flip <- sample(nrow(imgs), round(share * nrow(imgs)))
    classes <- unique(imgs$label)
    imgs$label[flip] <- vapply(flip, function(i) sample(setdiff(classes, imgs$label[i]), 1), "")
  })
  list(images = imgs, flip = seq_len(nrow(imgs)) %in% flip)
}

# Shipped photos for the labelling app, and the rows of its label file.
example_images <- function(n = 4) {
  folder <- system.file("extdata", "images", package = "tidyvision")
  expand_paths(file.path(folder, c("animals/cat.jpg", "buildings/colosseum.jpg", "tools/hammer1.jpg",
                                   "animals/dog.jpg", "tools/wrench.jpg")[seq_len(n)]))
}

label_rows <- function(output) utils::read.csv(output, skip = 1, colClasses = "character", na.strings = "")
