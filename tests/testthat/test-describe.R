# Every number in a description, as text ("0.001", "3,000", "72.6%" -> "72.6").
numbers_in <- function(text) {
  gsub(",", "", regmatches(text, gregexpr("[0-9][0-9,]*(\\.[0-9]+)?", text))[[1]])
}

test_that("describe() of a classifier: every number comes from the fit", {
  skip_if_no_engine()
  fit <- small_fit()
  text <- describe(fit)
  expect_s3_class(text, "tv_description")
  expect_length(text, 1)
  # the version strings and the fingerprint are checked whole, then set aside
  v <- tidyvision:::tv_versions()
  versions <- c(as.character(utils::packageVersion("tidyvision")), as.character(getRversion()), v$torch, v$torchvision)
  for (s in c(versions, fit$fingerprint)) expect_true(grepl(s, text, fixed = TRUE), info = s)
  # names with digits in them: the versions, the fingerprint, the backbone, SHA-256, F1
  rest <- text
  for (s in c(versions, fit$fingerprint, fit$backbone, "SHA-256", "F1")) rest <- gsub(s, "", rest, fixed = TRUE)
  s <- fit$settings
  best <- fit$history[fit$history$epoch == fit$best_epoch & fit$history$split == "val", ]
  right <- round(best$accuracy * fit$n_val)
  ci <- stats::binom.test(right, fit$n_val)$conf.int
  counts <- c(length(fit$classes), fit$n_train, fit$n_val, fit$val_counts, s$learning_rate, s$momentum,
              s$batch_size, s$epochs, s$gamma, s$step_size, s$image_size, fit$best_epoch, right, 95)
  allowed <- c(vapply(counts, format, "", scientific = FALSE, drop0trailing = TRUE),
               sprintf("%.3f", c(best$accuracy, ci, best$precision, best$recall, best$f1)))
  found <- numbers_in(rest)
  expect_gt(length(found), 15)
  expect_true(all(found %in% allowed), info = paste(setdiff(found, allowed), collapse = " "))
  expect_match(text, "exact Clopper-Pearson")
  expect_match(text, paste0("(for the class ", fit$classes[1], ")"), fixed = TRUE)
  expect_match(text, "not recorded")
  expect_match(describe(fit, format = "text"), fit$fingerprint, fixed = TRUE)
  expect_false(grepl("`", describe(fit, format = "text")))
})

test_that("describe() with the training data gives counts per split and class, and the duplicate check", {
  skip_if_no_engine()
  fit <- small_fit()
  imgs <- separable_images()
  imgs$copy_group <- seq_len(nrow(imgs))
  text <- describe(fit, data = imgs, group = copy_group)
  train <- table(imgs$label[imgs$split == "train"])
  for (k in names(train)) expect_match(text, paste0(k, ": ", train[[k]]), fixed = TRUE)
  expect_match(text, "No group of near-duplicate images (column copy_group) spans two splits", fixed = TRUE)
  expect_match(text, "exact Clopper-Pearson for accuracy, precision and recall", fixed = TRUE)
  expect_match(text, paste0("precision, recall and F1 for the class ", fit$classes[1]), fixed = TRUE)
  m <- tidyvision:::described_metrics(fit, imgs[imgs$split == "val", ])
  for (i in seq_len(nrow(m))) {
    expect_match(text, sprintf("%s was %.3f (%.3f to %.3f)", m$name[i], m$.estimate[i], m$.lower[i], m$.upper[i]),
                 fixed = TRUE)
  }
  # The level is the one asked for, in the words and in the numbers.
  at90 <- describe(fit, data = imgs, conf_level = 0.9)
  expect_match(at90, "90% intervals", fixed = TRUE)
  expect_false(grepl("95%", at90, fixed = TRUE))
  m90 <- tidyvision:::described_metrics(fit, imgs[imgs$split == "val", ], conf_level = 0.9)
  expect_match(at90, sprintf("accuracy was %.3f (%.3f to %.3f)", m90$.estimate[1], m90$.lower[1], m90$.upper[1]),
               fixed = TRUE)
  expect_match(describe(fit, conf_level = 0.9), "90% exact Clopper-Pearson", fixed = TRUE)
  expect_error(describe(fit, conf_level = 95), class = "tidyvision_error_bad_argument")
  imgs$copy_group[imgs$split == "val"][1] <- imgs$copy_group[imgs$split == "train"][1]
  expect_match(describe(fit, data = imgs, group = copy_group), "1 group(s) of near-duplicate images", fixed = TRUE)
  expect_match(describe(fit, data = imgs), "not checked for near-duplicate")
})

test_that("describe() of an estimate: method, counts and intervals from the object", {
  skip_if_no_engine()
  corpus <- sim_corpus()
  coded <- code_sample(corpus, sample_for_coding(corpus, n = 200))
  est <- estimate_prevalence(corpus, coded, label, method = "all")
  text <- describe(est)
  expect_match(text, "PPI++", fixed = TRUE)
  expect_match(text, "3,000 images", fixed = TRUE)
  expect_match(text, "200 images hand-coded", fixed = TRUE)
  rest <- gsub("Angelopoulos, Duchi and Zrnic 2023", "", text, fixed = TRUE)
  allowed <- c(sprintf("%.1f", 100 * c(est$.estimate, est$.lower, est$.upper)), "95", "3000", "200")
  found <- numbers_in(rest)
  # the two counts, then per class three intervals of four numbers (share, level, bounds)
  expect_length(found, 2 + 2 * 3 * 4)
  expect_true(all(found %in% allowed))
  ppi <- est[est$method == "ppi++" & est$class == "protest", ]
  expect_match(text, sprintf("protest: %.1f%% (95%% interval %.1f%% to %.1f%%)",
                             100 * ppi$.estimate, 100 * ppi$.lower, 100 * ppi$.upper), fixed = TRUE)
})
