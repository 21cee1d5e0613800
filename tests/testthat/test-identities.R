# fit_identities(), predict(), augment() ---------------------------------------

test_that("an identity model trained on a few faces names them and says unknown for a stranger", {
  skip_if_no_engine()
  faces <- face_variants()
  # Three photos each of Obama and Biden; Collins (the astronaut) is a stranger.
  train <- faces[faces$who %in% c("obama", "biden") & !grepl("darker|turned", faces$path), ]
  expect_equal(as.vector(table(train$who)), c(3, 3))
  new <- rbind(faces[grepl("darker|turned", faces$path), ],
               face_embeddings(face_photo("obama_small_face"), verbose = FALSE) |>
                 transform(who = "obama"))
  truth <- ifelse(new$who == "astronaut", "unknown", new$who)
  for (method in c("nearest", "centroid")) {
    fit <- fit_identities(train, who, method = method)
    expect_s3_class(fit, "tv_identities")
    pred <- predict(fit, new)
    expect_named(pred, c(".pred_identity", ".distance"))
    expect_equal(levels(pred$.pred_identity), c("biden", "obama", "unknown"))
    expect_equal(as.character(pred$.pred_identity), truth, label = method)
    expect_true(all(pred$.distance[truth == "unknown"] > 0.6))
    expect_true(all(pred$.distance[truth != "unknown"] < 0.6))
    # The training faces themselves.
    expect_equal(as.character(predict(fit, train)$.pred_identity), train$who)
  }
  scored <- augment(fit, new)
  expect_equal(nrow(scored), nrow(new))
  scored$truth <- factor(truth, levels = levels(scored$.pred_identity))
  metrics <- image_metrics(scored, truth, .pred_identity, times = 0)
  expect_equal(metrics$.estimate[metrics$.metric == "accuracy"], 1)
})

test_that("fit_identities() computes missing embeddings and skips faceless rows", {
  skip_if_no_engine()
  eiffel <- system.file("extdata", "images", "buildings", "eiffel_tower.jpg", package = "tidyvision")
  faces <- detect_faces(c(face_photo("biden"), eiffel, face_photo("obama_portrait")))
  expect_warning(fit <- fit_identities(faces, c("Biden", "nobody", "Obama")),
                 "1 face without an embedding", class = "tidyvision_warning_dropped_faces")
  expect_equal(fit$identities, c("Biden", "Obama"))
  pred <- predict(fit, faces)
  expect_equal(as.character(pred$.pred_identity), c("Biden", NA, "Obama"))
  expect_equal(pred$.distance[c(1, 3)], c(0, 0), tolerance = 1e-6)
})

# Pure R: the rule on made-up embeddings ---------------------------------------

toy <- function() {
  x <- rbind(c(0, 0), c(0.2, 0), c(3, 0), c(3, 0.4))
  list(x = x, who = c("a", "a", "b", "b"))
}

test_that("nearest and centroid rules, with unknown past the threshold", {
  t <- toy()
  new <- rbind(c(0.15, 0), c(3, 0.3), c(1.5, 0), c(NA, NA), c(3, 0.9))
  near <- predict(fit_identities(t$x, t$who, threshold = 0.6), new)
  expect_equal(as.character(near$.pred_identity), c("a", "b", "unknown", NA, "b"))
  expect_equal(near$.distance, c(0.05, 0.1, 1.3, NA, 0.5))
  cent <- predict(fit_identities(t$x, t$who, threshold = 0.6, method = "centroid"), new)
  expect_equal(as.character(cent$.pred_identity), c("a", "b", "unknown", NA, "unknown"))
  expect_equal(cent$.distance, c(0.05, 0.1, 1.4, NA, 0.7))
  strict <- predict(fit_identities(t$x, t$who), new, threshold = 0.08)
  expect_equal(as.character(strict$.pred_identity), c("a", "unknown", "unknown", NA, "unknown"))
  expect_equal(levels(strict$.pred_identity), c("a", "b", "unknown"))
})

test_that("augment() adds the predictions and keeps groups", {
  t <- toy()
  fit <- fit_identities(t$x, t$who)
  faces <- dplyr::group_by(tibble::tibble(who = t$who, embedding = t$x), who)
  scored <- augment(fit, faces)
  expect_s3_class(scored, "grouped_df")
  expect_named(scored, c("who", "embedding", ".pred_identity", ".distance"))
  expect_equal(as.character(scored$.pred_identity), t$who)
  expect_named(augment(fit, t$x), c("embedding", ".pred_identity", ".distance"))
})

test_that("factor identities keep their level order", {
  t <- toy()
  fit <- fit_identities(t$x, factor(t$who, levels = c("b", "a")))
  expect_equal(fit$identities, c("b", "a"))
  expect_equal(levels(predict(fit, t$x)$.pred_identity), c("b", "a", "unknown"))
})

test_that("the model prints what it knows and its rule", {
  t <- toy()
  expect_snapshot(print(fit_identities(t$x, t$who)))
  expect_snapshot(print(fit_identities(t$x[1:3, ], c("a", "a", "c"), method = "centroid", threshold = 0.5)))
})

test_that("bad identities and embeddings are classed errors", {
  t <- toy()
  expect_snapshot(error = TRUE, {
    fit_identities(t$x, c("a", "unknown", "b", "b"))
    fit_identities(t$x, c("a", "b"))
    fit_identities(tibble::tibble(path = "a.jpg", embedding = t$x[1, , drop = FALSE]), who)
    fit_identities("a.jpg", "a")
    fit_identities(t$x, t$who, threshold = 0)
    predict(fit_identities(t$x, t$who), cbind(t$x, 1))
  })
  expect_error(fit_identities(t$x, c(NA, NA, NA, NA)), class = "tidyvision_error_no_faces") |>
    expect_warning(class = "tidyvision_warning_dropped_faces")
  expect_error(fit_identities(t$x, c("a", "b")), class = "tidyvision_error_bad_argument")
})
