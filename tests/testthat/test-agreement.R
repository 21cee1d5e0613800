# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 coders x 12 units, values 1-5, missing data. Published: nominal 0.743, interval 0.849.
krippendorff_2011 <- function() {
  n <- NA
  d <- rbind(c(1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n), c(1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3),
             c(n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n), c(1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n))
  out <- tibble::tibble(path = rep(sprintf("unit%02d.jpg", 1:12), each = 4),
                        coder = rep(c("A", "B", "C", "D"), 12), score = as.vector(d),
                        label = c("one", "two", "three", "four", "five")[as.vector(d)],
                        time = Sys.time())
  out[!is.na(out$score) | out$path == "unit12.jpg", ]  # missing values as absent rows, and as NA
}

test_that("alpha matches Krippendorff's published example, nominal and interval", {
  skip_if_no_engine()
  labels <- krippendorff_2011()
  res <- label_agreement(labels, times = 300)
  expect_named(res, c(".metric", ".estimate", ".lower", ".upper", "n_units", "n_coders", "coders"))
  expect_equal(res$.metric, c("krippendorff_alpha", "fleiss_kappa", rep("cohen_kappa", 6), "percent_agreement"))
  alpha <- res[1, ]
  expect_equal(round(alpha$.estimate, 3), 0.743)
  expect_true(alpha$.lower < 0.743 && alpha$.upper > 0.743 && alpha$.upper <= 1)
  expect_equal(c(alpha$n_units, alpha$n_coders), c(11L, 4L))  # unit 12 has one value
  expect_equal(res$coders[3:8], c("A, B", "A, C", "A, D", "B, C", "B, D", "C, D"))
  # percent agreement: the share of agreeing coder pairs, averaged over units
  expect_equal(res$.estimate[9], mean(c(1, 0.5, 1, 1, 1, 0, 1, 0.5, 1, 1, 1)))
  interval <- label_agreement(labels, label = score, times = 0)
  expect_equal(round(interval$.estimate, 3), 0.849)
  expect_equal(interval$.metric, "krippendorff_alpha")
  expect_true(is.na(interval$.lower))
  expect_equal(round(label_agreement(labels, label = score, level = "nominal", times = 0)$.estimate[1], 3), 0.743)
  # same seed, same interval
  expect_identical(label_agreement(labels, times = 300), res)
})

test_that("two coders: Cohen's kappa by hand, and disagreements for adjudication", {
  skip_if_no_engine()
  a <- rep(c("cat", "dog"), c(30, 20))
  b <- a
  b[c(1:5, 31:33)] <- c(rep("dog", 5), rep("cat", 3))
  labels <- tibble::tibble(path = rep(sprintf("%02d.jpg", 1:50), 2), coder = rep(c("ann", "bob"), each = 50),
                           label = c(a, b))
  res <- label_agreement(labels, times = 200)
  po <- mean(a == b)
  pe <- mean(a == "cat") * mean(b == "cat") + mean(a == "dog") * mean(b == "dog")
  kappa <- res[res$.metric == "cohen_kappa", ]
  expect_equal(kappa$.estimate, (po - pe) / (1 - pe))
  expect_equal(kappa$coders, "ann, bob")
  expect_equal(res$.estimate[res$.metric == "percent_agreement"], po)
  expect_true(all(res$.lower < res$.estimate & res$.estimate < res$.upper))
  # a third coder breaks a tie; the most disputed image comes first
  cy <- tibble::tibble(path = c("01.jpg", "31.jpg", "02.jpg"), coder = "cy", label = c("bird", "cat", "cat"))
  dis <- label_disagreements(rbind(labels, cy))
  expect_named(dis, c("path", "n_coders", "n_labels", "majority", "agreement", "labels"))
  expect_setequal(dis$path, sprintf("%02d.jpg", c(1:5, 31:33)))
  expect_equal(dis$path[1], "01.jpg")
  expect_equal(dis$labels[1], "cat (ann); dog (bob); bird (cy)")
  expect_true(is.na(dis$majority[dis$path == "03.jpg"]))
  expect_equal(dis$majority[dis$path == "02.jpg"], "cat")
  expect_equal(dis$agreement[dis$path == "31.jpg"], 2 / 3)
})

test_that("scores: one interval alpha per category, and the book's rule on top", {
  skip_if_no_engine()
  set.seed(1)
  truth <- sample(c(0, 0, 0:10), 40, replace = TRUE)
  noisy <- function(x, sd) pmin(10, pmax(0, round(x + stats::rnorm(length(x), 0, sd))))
  scores <- tibble::tibble(path = rep(sprintf("%02d.jpg", 1:40), 2), coder = rep(c("ann", "bob"), each = 40),
                           protest = c(noisy(truth, 0.5), noisy(truth, 0.5)),
                           riot = sample(0:10, 80, replace = TRUE),
                           time = Sys.time())
  res <- label_agreement(scores, times = 200)  # no label column: the numeric columns but time
  expect_equal(res$.category, c("protest", "riot"))
  expect_equal(unique(res$.metric), "krippendorff_alpha")
  expect_gt(res$.estimate[1], 0.9)
  expect_lt(abs(res$.estimate[2]), 0.3)
  # agreement on the clean labels the book's rule gives (riot never seen here)
  clean <- binarize_scores(transform(scores, riot = 0), c(protest, riot))
  expect_setequal(clean$.label_protest, c(TRUE, FALSE, NA))
  by_rule <- label_agreement(clean, label = .label_protest, times = 0)
  expect_equal(by_rule$.metric[1], "krippendorff_alpha")
  expect_gt(by_rule$.estimate[1], 0.5)
  expect_equal(by_rule$n_units[1], sum(tapply(!is.na(clean$.label_protest), clean$path, sum) == 2))
})

test_that("bad labels get classed errors naming the problem", {
  labels <- krippendorff_2011()
  expect_error(label_agreement(labels[labels$coder == "A", ]), class = "tidyvision_error_one_coder")
  expect_error(label_agreement(labels, classes = c("one", "two")), class = "tidyvision_error_unknown_class")
  expect_error(label_agreement(labels[c("path", "label")]), class = "tidyvision_error_missing_column")
  expect_error(label_agreement(labels[c("coder", "label")]), class = "tidyvision_error_missing_column")
  expect_error(label_agreement(labels, label = category), class = "tidyvision_error_missing_column")
  expect_error(label_agreement(labels[c("path", "coder")]), class = "tidyvision_error_missing_column")
  expect_error(label_agreement(rbind(labels, labels[1, ])), class = "tidyvision_error_duplicate_labels")
  expect_error(label_agreement(labels, level = "interval"), class = "tidyvision_error_bad_argument")
  expect_error(label_agreement(labels, level = "nominl"), class = "tidyvision_error_bad_argument")
  expect_error(label_agreement(labels, times = -1), class = "tidyvision_error_bad_argument")
  expect_error(label_disagreements(labels, label = c(label, score)), class = "tidyvision_error_bad_argument")
  expect_snapshot(error = TRUE, {
    label_agreement(labels[labels$coder == "A", ])
    label_agreement(labels, classes = c("one", "two"))
  })
})

test_that("the labelling app's file feeds label_agreement() directly: skips are missing, undos are undone", {
  out <- withr::local_tempfile(fileext = ".csv")
  paths <- file.path(tempdir(), paste0("img", 1:6, ".jpg"))
  classes <- c("protest", "other")
  out <- open_label_file(out, "classes", classes, call = NULL)
  a <- c("protest", "protest", "other", "other", "protest", "other")
  b <- c("protest", "other", "other", "other", "protest", "other")
  for (i in 1:6) append_label_row(out, paths[i], "ann", "label", a[i])
  for (i in 1:6) append_label_row(out, paths[i], "bob", "label", if (i == 2) "protest" else b[i])
  append_label_row(out, paths[2], "bob", "undo")     # bob takes back "protest" on image 2 ...
  append_label_row(out, paths[2], "bob", "label", "other")  # ... and says "other"
  append_label_row(out, paths[6], "bob", "skip")     # and skips image 6 after all
  labels <- read_labels(out)
  agree <- label_agreement(labels, times = 50, seed = 1)
  pct <- agree[agree$.metric == "percent_agreement", ]
  expect_equal(pct$n_units, 5L)  # image 6 has one coder's label only
  expect_equal(pct$.estimate, 4 / 5)
  expect_equal(label_disagreements(labels)$path[1], normalizePath(paths[2], mustWork = FALSE))
})
