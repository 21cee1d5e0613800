# find_duplicates() -----------------------------------------------------------

# Six different photos and, for each, the four near-copies of the issue.
make_copies <- function(root) {
  fx <- fixtures()
  originals <- unlist(fx$make_class_folder(root, n_per_class = 3L, size = 96L))
  kinds <- c("jpeg40", "half", "png", "crop3")
  copies <- unlist(lapply(kinds, function(kind) {
    ext <- if (kind == "png") ".png" else ".jpg"
    vapply(seq_along(originals), function(i) {
      fx$write_copy(originals[i], file.path(root, paste0("copy_", kind, "_", i, ext)), kind)
    }, character(1))
  }))
  list(paths = c(originals, copies), truth = rep(seq_along(originals), length(kinds) + 1))
}

test_that("near copies fall in their original's group, different photos don't", {
  skip_if_no_engine()
  set <- make_copies(withr::local_tempdir())
  # Shuffle so that originals aren't always first.
  order <- withr::with_seed(3, sample(length(set$paths)))
  dups <- find_duplicates(set$paths[order])
  truth <- set$truth[order]
  expect_named(dups, c("path", "group", "is_first", "distance"))
  expect_equal(dups$path, set$paths[order])
  same_found <- outer(dups$group, dups$group, "==")
  same_truth <- outer(truth, truth, "==")
  recall <- sum(same_found & same_truth) / sum(same_truth)
  precision <- sum(same_found & same_truth) / sum(same_found)
  expect_equal(c(recall = recall, precision = precision), c(recall = 1, precision = 1))
  # Groups numbered by first appearance; one first per group, at distance 0.
  expect_equal(unique(dups$group), seq_len(6))
  expect_equal(dups$is_first, !duplicated(dups$group))
  expect_true(all(dups$distance[dups$is_first] == 0))
  expect_true(all(dups$distance <= 8))
  expect_type(dups$group, "integer")
  expect_type(dups$distance, "integer")
  expect_equal(formals(find_duplicates)$max_distance,
               tidyvision:::engine$prepare$DEFAULT_MAX_DISTANCE)
})

test_that("exact finds identical files only, and takes a tibble", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  set <- make_copies(root)
  file.copy(set$paths[1], file.path(root, "red", "same.jpg"))
  imgs <- image_files(root)
  dups <- find_duplicates(imgs, method = "exact")
  expect_equal(dups$path, imgs$path)
  same <- dups$group[basename(dups$path) %in% c("red_000.jpg", "same.jpg")]
  expect_length(unique(same), 1)
  expect_equal(max(dups$group), nrow(imgs) - 1)
  expect_true(all(dups$distance == 0))
  expect_equal(sum(!dups$is_first), 1)
})

test_that("unreadable images get NA and one warning naming them", {
  skip_if_no_engine()
  root <- withr::local_tempdir()
  fixtures()$make_class_folder(root, n_per_class = 2L)
  writeLines("not an image", file.path(root, "red", "text.jpg"))
  imgs <- suppressWarnings(image_files(root))
  marked <- which(basename(imgs$path) == "text.jpg")
  expect_false(imgs$readable[marked])
  w <- expect_warning(dups <- find_duplicates(imgs), class = "tidyvision_warning_unreadable")
  expect_match(conditionMessage(w), "text.jpg", fixed = TRUE)
  expect_equal(nrow(dups), nrow(imgs))
  expect_true(is.na(dups$group[marked]) && is.na(dups$is_first[marked]) && is.na(dups$distance[marked]))
  expect_false(anyNA(dups$group[-marked]))
  # Without the readable column, the engine finds out by decoding.
  w <- expect_warning(dups2 <- find_duplicates(imgs$path), class = "tidyvision_warning_unreadable")
  expect_match(conditionMessage(w), "1 image can't be read")
  expect_equal(dups2$group, dups$group)
})

test_that("find_duplicates() checks its arguments", {
  expect_error(find_duplicates("a.jpg", max_distance = 65), class = "tidyvision_error_bad_argument")
  expect_error(find_duplicates("a.jpg", max_distance = 2.5), class = "tidyvision_error_bad_argument")
  expect_error(find_duplicates("a.jpg", method = "md5"))
  expect_error(find_duplicates(data.frame(file = "a.jpg")), class = "tidyvision_error_missing_column")
  expect_snapshot(find_duplicates("a.jpg", max_distance = -1), error = TRUE)
})

# split_images() --------------------------------------------------------------

three_classes <- function() {
  tibble::tibble(
    path = sprintf("img%02d.jpg", 1:20),
    label = rep(c("a", "b", "c"), c(12, 5, 3)),
    source = rep(c("x", "y"), 10)
  )
}

test_that("a split images already have is kept unless overwrite = TRUE, and that is said", {
  imgs <- three_classes()
  imgs$split <- rep(c("train", "val"), c(16, 4))
  expect_message(out <- split_images(imgs, seed = 1), "Kept the split", class = "tidyvision_message_split_kept")
  expect_identical(out, imgs)
  fresh <- expect_no_message(split_images(imgs, seed = 1, overwrite = TRUE))
  expect_equal(fresh$split, split_images(imgs[names(imgs) != "split"], seed = 1)$split)
  # Rows without a split get one; the others keep theirs.
  imgs$split[c(3, 18)] <- NA
  # (two images can't fill both splits for each of their classes: that is warned about)
  expect_warning(msg <- expect_message(part <- split_images(imgs, seed = 1), class = "tidyvision_message_split_kept"),
                 class = "tidyvision_warning_empty_split")
  expect_match(conditionMessage(msg), "split only the 2 images without one")
  expect_equal(part$split[-c(3, 18)], imgs$split[-c(3, 18)])
  expect_true(all(part$split[c(3, 18)] %in% c("train", "val")))
  expect_error(split_images(imgs, overwrite = NA), class = "tidyvision_error_bad_argument")
})

test_that("splits are stratified, with at least one image per class in each split", {
  imgs <- three_classes()
  out <- split_images(imgs, prop = c(train = 0.7, val = 0.15, test = 0.15), seed = 1)
  expect_equal(out[names(imgs)], imgs)
  expect_named(out, c(names(imgs), "split"))
  counts <- table(out$label, factor(out$split, c("train", "val", "test")))
  expect_equal(unclass(counts["a", ]), c(train = 8, val = 2, test = 2))
  expect_equal(unclass(counts["b", ]), c(train = 3, val = 1, test = 1))
  expect_equal(unclass(counts["c", ]), c(train = 1, val = 1, test = 1))
  # A class with fewer images than splits can't fill them all.
  small <- tibble::tibble(path = c("p1", "p2", "p3"), label = c("a", "a", "b"))
  expect_warning(out <- split_images(small, prop = c(train = 0.5, val = 0.3, test = 0.2)),
                 class = "tidyvision_warning_empty_split")
  expect_equal(sort(out$split[out$label == "a"]), c("train", "val"))
  expect_equal(out$split[out$label == "b"], "train")
})

test_that("split_counts() rounds by largest remainders and fills every split", {
  expect_equal(split_counts(10, c(0.8, 0.2)), c(8, 2))
  expect_equal(split_counts(3, c(0.8, 0.2)), c(2, 1))
  expect_equal(split_counts(2, c(0.8, 0.2)), c(1, 1))
  expect_equal(split_counts(1, c(0.8, 0.2)), c(1, 0))
  expect_equal(split_counts(3, c(0.7, 0.15, 0.15)), c(1, 1, 1))
  expect_equal(split_counts(7, c(0.6, 0.2, 0.2)), c(4, 2, 1))
  expect_equal(split_counts(0, c(0.8, 0.2)), c(0, 0))
  for (n in 1:40) expect_equal(sum(split_counts(n, c(0.7, 0.2, 0.1))), n)
  # Too few for every split: train first, then val.
  expect_equal(split_counts(2, c(0.9, 0.05, 0.05)), c(1, 1, 0))
  expect_equal(split_counts(1, c(0.05, 0.9, 0.05)), c(1, 0, 0))
})

test_that("the same seed gives the same split; the global RNG is untouched", {
  imgs <- three_classes()
  set.seed(99)
  before <- .Random.seed
  a <- split_images(imgs, seed = 5)
  expect_identical(.Random.seed, before)
  expect_identical(split_images(imgs, seed = 5), a)
  seeds <- vapply(1:5, function(s) paste(split_images(imgs, seed = s)$split, collapse = ""), "")
  expect_gt(length(unique(seeds)), 1)
})

test_that("strata can be NULL or several columns; an old split is overwritten on request", {
  imgs <- three_classes()
  imgs$split <- "test"
  out <- split_images(imgs, prop = c(train = 0.5, val = 0.5), strata = NULL, overwrite = TRUE)
  expect_equal(as.vector(table(out$split)), c(10, 10))
  expect_warning(out <- split_images(imgs, prop = c(train = 0.5, val = 0.5), strata = c(label, source),
                                     overwrite = TRUE),
                 "c / x (1 image): none in val", fixed = TRUE, class = "tidyvision_warning_empty_split")
  counts <- table(paste(out$label, out$source), out$split)
  expect_true(all(abs(counts[, "train"] - counts[, "val"]) <= 1))
  expect_equal(names(out), names(imgs))
  zero <- split_images(imgs, prop = c(train = 1, test = 0), overwrite = TRUE)
  expect_true(all(zero$split == "train"))
  expect_equal(nrow(split_images(imgs[0, ])), 0)
})

test_that("groups never straddle splits and proportions stay close", {
  set.seed(1)
  n <- 300
  imgs <- tibble::tibble(
    path = paste0("img", seq_len(n), ".jpg"),
    label = sample(c("protest", "no_protest"), n, replace = TRUE, prob = c(0.3, 0.7)),
    dup = sample(c(1:120, rep(NA, 10)), n, replace = TRUE)
  )
  for (seed in 1:3) {
    out <- split_images(imgs, prop = c(train = 0.6, val = 0.2, test = 0.2), group = dup, seed = seed)
    per_group <- tapply(out$split[!is.na(out$dup)], out$dup[!is.na(out$dup)], function(s) length(unique(s)))
    expect_true(all(per_group == 1))
    share <- prop.table(table(factor(out$split, c("train", "val", "test"))))
    expect_true(all(abs(share - c(0.6, 0.2, 0.2)) < 0.03))
    by_class <- prop.table(table(out$label, out$split), 1)
    expect_true(all(abs(by_class[, "train"] - 0.6) < 0.08))
  }
  # NA groups are groups of one: they spread over the splits.
  lonely <- tibble::tibble(path = letters[1:10], label = "a", dup = NA)
  expect_setequal(split_images(lonely, group = dup)$split, c("train", "val"))
})

test_that("bad prop, unknown columns and a missing label are classed errors", {
  imgs <- three_classes()
  expect_error(split_images(imgs, prop = c(train = 0.8, valid = 0.2)), class = "tidyvision_error_bad_prop")
  expect_error(split_images(imgs, prop = c(0.8, 0.2)), class = "tidyvision_error_bad_prop")
  expect_error(split_images(imgs, prop = c(train = 0.8, val = 0.1)), class = "tidyvision_error_bad_prop")
  expect_error(split_images(imgs, prop = c(train = 1.2, val = -0.2)), class = "tidyvision_error_bad_prop")
  expect_error(split_images(imgs, prop = c(train = 0.5, train = 0.5)), class = "tidyvision_error_bad_prop")
  expect_error(split_images(imgs, prop = "train"), class = "tidyvision_error_bad_argument")
  expect_error(split_images(imgs, strata = klass), class = "tidyvision_error_missing_column")
  expect_error(split_images(imgs, group = dup), class = "tidyvision_error_missing_column")
  expect_error(split_images(imgs, group = c(label, source)), class = "tidyvision_error_bad_argument")
  expect_error(split_images(imgs[c("path", "source")]), class = "tidyvision_error_missing_column")
  expect_error(split_images(imgs, seed = "a"), class = "tidyvision_error_bad_argument")
  expect_error(split_images("img.jpg"), class = "tidyvision_error_bad_argument")
  expect_snapshot(split_images(imgs, prop = c(train = 0.8, valid = 0.2)), error = TRUE)
  expect_snapshot(split_images(imgs, prop = c(train = 0.7, val = 0.2)), error = TRUE)
  expect_snapshot(split_images(imgs[c("path", "source")]), error = TRUE)
})

# balance_classes() -----------------------------------------------------------

test_that("balance_classes() downsamples to the smallest class, in order, by seed", {
  imgs <- three_classes()
  out <- balance_classes(imgs, seed = 2)
  expect_equal(as.vector(table(out$label)), c(3, 3, 3))
  expect_equal(out$path, imgs$path[sort(match(out$path, imgs$path))])
  expect_identical(balance_classes(imgs, seed = 2), out)
  expect_false(identical(balance_classes(imgs, seed = 3)$path, out$path))
  expect_equal(sum(out$label == "c"), 3)
  by_source <- balance_classes(imgs, label = source)
  expect_equal(as.vector(table(by_source$source)), c(10, 10))
  expect_error(balance_classes(imgs, label = klass), class = "tidyvision_error_missing_column")
  expect_error(balance_classes(imgs[c("path", "source")]), class = "tidyvision_error_missing_column")
})

test_that("balance_classes() balances each group and drops missing labels", {
  imgs <- three_classes()
  imgs$label[1] <- NA
  expect_warning(out <- balance_classes(imgs), class = "tidyvision_warning_missing_label")
  expect_false(anyNA(out$label))
  grouped <- dplyr::group_by(three_classes(), source)
  out <- balance_classes(grouped)
  expect_s3_class(out, "grouped_df")
  counts <- table(out$source, out$label)
  expect_equal(unclass(counts["x", ]), c(a = 1, b = 1, c = 1))
  expect_equal(unclass(counts["y", ]), c(a = 2, b = 2, c = 2))
  f <- three_classes()
  f$label <- factor(f$label, levels = c("a", "b", "c", "unused"))
  expect_equal(nrow(balance_classes(f)), 9)
})

# binarize_scores() -----------------------------------------------------------

test_that("binarize_scores() follows the book's rule on every edge case", {
  ratings <- tibble::tribble(
    ~case,                   ~protest, ~riot, ~police,
    "clear positive",              8,     1,       0,
    "margin exactly 3",            6,     3,       0,
    "margin just short",           6,   3.5,       0,
    "tie at the top",              7,     7,       0,
    "below threshold",             2,     0,       0,
    "threshold exactly 3",         3,     0,       0,
    "all zero",                    0,     0,       0,
    "low but not zero",            0,     1,       0,
    "NA score",                   NA,     0,       0,
    "NA beside a winner",          9,    NA,       0,
    "decimals at the margin",    0.6,   0.3,       0
  )
  out <- binarize_scores(ratings, c(protest, riot, police))
  expect_named(out, c(names(ratings), ".label_protest", ".label_riot", ".label_police"))
  expect_equal(out$.label_protest, c(TRUE, TRUE, NA, NA, NA, TRUE, FALSE, NA, NA, NA, NA))
  expect_equal(out$.label_riot, c(NA, NA, NA, NA, NA, NA, FALSE, NA, NA, NA, NA))
  expect_equal(out$.label_police, c(NA, NA, NA, NA, NA, NA, FALSE, NA, NA, NA, NA))
  # The rule scales to any units: margin and threshold 0.3 on a 0-1 scale.
  small <- binarize_scores(ratings[11, ], c(protest, riot), threshold = 0.3, margin = 0.3)
  expect_true(small$.label_protest)
  expect_type(out$.label_riot, "logical")
})

test_that("binarize_scores() takes tidyselect, one column, and checks input", {
  ratings <- data.frame(score_a = c(5, 0, 2), score_b = c(1, 0, 0), note = "x")
  out <- binarize_scores(ratings, tidyselect::starts_with("score_"), threshold = 4, margin = 2)
  expect_equal(out$.label_score_a, c(TRUE, FALSE, NA))
  expect_equal(out$.label_score_b, c(NA, FALSE, NA))
  one <- binarize_scores(ratings, score_a)
  expect_equal(one$.label_score_a, c(TRUE, FALSE, NA))
  again <- binarize_scores(out, c(score_a, score_b))
  expect_equal(ncol(again), ncol(out))
  expect_error(binarize_scores(ratings, note), class = "tidyvision_error_bad_argument")
  expect_error(binarize_scores(ratings, c(score_a, nope)), class = "tidyvision_error_missing_column")
  expect_error(binarize_scores(ratings, c(score_a, score_b), margin = -1), class = "tidyvision_error_bad_argument")
  expect_error(binarize_scores(ratings, tidyselect::starts_with("zzz")), class = "tidyvision_error_bad_argument")
  expect_equal(nrow(binarize_scores(ratings[0, ], c(score_a, score_b))), 0)
})

test_that("a class too small for every split is named in a classed warning", {
  images <- tibble::tibble(path = paste0(1:24, ".jpg"),
                           label = c(rep("common", 20), "rare", rep("pair", 3)))
  expect_warning(s <- split_images(images), "rare (1 image): none in val", fixed = TRUE,
                 class = "tidyvision_warning_empty_split")
  expect_equal(s$split[s$label == "rare"], "train")
  expect_setequal(s$split[s$label == "pair"], c("train", "val"))
  w <- tryCatch(split_images(images, prop = c(train = 0.9, val = 0.05, test = 0.05)),
                tidyvision_warning_empty_split = function(w) w)
  expect_match(conditionMessage(w), "rare (1 image): none in test", fixed = TRUE)
  expect_no_match(conditionMessage(w), "common|pair")
  s3 <- suppressWarnings(split_images(images, prop = c(train = 0.9, val = 0.05, test = 0.05)))
  expect_equal(sort(s3$split[s3$label == "pair"]), c("test", "train", "val"))
  # Groups can leave a class out of a split even when it has enough images.
  images$group <- c(1:20, 21, 22, 22, 22)
  expect_warning(split_images(images, group = group), "pair (3 images): none in val", fixed = TRUE,
                 class = "tidyvision_warning_empty_split")
  expect_no_warning(split_images(images[1:20, ]))
  expect_no_warning(split_images(images, strata = NULL))
})

test_that("find_duplicates() shows a progress bar that reaches the end", {
  skip_if_no_engine()
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  paths <- dir(system.file("extdata", "images", "tools", package = "tidyvision"), full.names = TRUE)[1:4]
  expect_snapshot(dups <- find_duplicates(paths, verbose = TRUE), transform = scrub_progress)
  expect_equal(nrow(dups), 4)
})
