test_that("image_embeddings() gives one row per image, NA where unreadable, and keeps the input's columns", {
  skip_if_no_engine()
  imgs <- image_files(system.file("extdata", "images", package = "tidyvision"))[c(1, 2, 40), ]
  bad <- withr::local_tempfile(fileext = ".jpg")
  writeLines("not an image", bad)
  x <- rbind(imgs[c("path", "label")], tibble::tibble(path = bad, label = "animals"))
  expect_warning(emb <- image_embeddings(x, image_size = 64, verbose = FALSE),
                 class = "tidyvision_warning_unreadable")
  expect_named(emb, c("path", "label", "embedding"))
  expect_equal(dim(emb$embedding), c(4L, 1280L))
  expect_true(all(is.na(emb$embedding[4, ])))
  expect_false(anyNA(emb$embedding[1:3, ]))
  # the same image gives the same vector, from any input form
  again <- image_embeddings(imgs$path[2], image_size = 64, verbose = FALSE)
  expect_equal(again$embedding[1, ], emb$embedding[2, ])
  # nearer to itself in another class's company: cosine of the two animals > animal vs building
  cosine <- function(a, b) sum(a * b) / sqrt(sum(a^2) * sum(b^2))
  expect_gt(cosine(emb$embedding[1, ], emb$embedding[1, ]), cosine(emb$embedding[1, ], emb$embedding[3, ]))
})

test_that("a classifier embeds with its own fine-tuned body and preprocessing", {
  skip_if_no_engine()
  fit <- small_fit()
  # a folder is listed; its images are embedded in path order
  folder <- system.file("extdata", "images", "tools", package = "tidyvision")
  paths <- image_paths(folder)[1:2]
  withr::local_options(cli.progress_show_after = 0, cli.dynamic = FALSE)
  expect_message(emb <- image_embeddings(folder, backbone = fit, verbose = TRUE), "Embedding images")
  expect_equal(emb$path, image_files(folder)$path)
  expect_equal(ncol(emb$embedding), 1280L)
  expect_error(image_embeddings(paths, backbone = 3), class = "tidyvision_error_bad_argument")
  expect_error(image_embeddings(paths, resize = "squash"), class = "tidyvision_error_bad_argument")
})
