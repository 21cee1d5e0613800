# Every export, every argument, bad values (helper-fuzz.R): each call must
# end in a classed tidyvision error, or in a correct value (with classed
# warnings only). A case lists the valid call, and for the bad values that are
# in fact fine there (a folder of images given as `path`), what the value must be.
# Not here: the label and corpus verbs and detect_objects()/train_detector(),
# which their own tests cover.

# Outcomes other than the default, a classed error. Each returns TRUE or a
# sentence saying what was wrong.
verdict <- function(ok, why) if (isTRUE(ok)) TRUE else why
an_error <- function(kind) {
  function(r) {
    if (is.null(r$error)) return("no error")
    verdict(is_classed_error(r$error, kind),
            paste0("not a classed error (", class(r$error)[[1]], ": ", cli::ansi_strip(conditionMessage(r$error)), ")"))
  }
}
a_value <- function(ok = function(v) TRUE) {
  function(r) {
    if (!is.null(r$error)) return(paste("an error:", conditionMessage(r$error)))
    if (!warnings_classed(r$warnings)) return("an unclassed warning")
    verdict(ok(r$value), "the wrong value")
  }
}
warned <- function(kind, ok = function(v) TRUE) {
  value <- a_value(ok)
  function(r) {
    kinds <- unlist(lapply(r$warnings, class))
    if (!paste0("tidyvision_warning_", kind) %in% kinds) return(paste("no tidyvision_warning_", kind))
    value(r)
  }
}
rows <- function(n) function(v) is.data.frame(v) && nrow(v) == n
is_plot <- function(v) inherits(v, "ggplot")

# What a verb over image files gives for the odd files: a row it reports
# unreadable, rows for a unicode path and for the missing file `"x"`.
image_outcomes <- function(unreadable = warned("unreadable"), empty = a_value(rows(0))) {
  list(missing = unreadable, string = unreadable, zero_byte = unreadable, text_as_jpg = unreadable,
       truncated_jpg = unreadable, bomb_png = unreadable, folder = empty,
       unicode = a_value(function(v) !is.data.frame(v) || nrow(v) >= 1))
}

# Runs one case: every argument in `args` (or `fuzz`) with every bad value.
# Returns the failures as lines.
fuzz_case <- function(fn, args, fuzz = names(args), paths = character(), expect = list()) {
  name <- if (is.character(fn)) fn else deparse(substitute(fn))
  f <- if (is.function(fn)) fn else getExportedValue("tidyvision", fn)
  out <- character()
  for (arg in fuzz) {
    for (v in names(fuzz_values(paths = arg %in% paths))) {
      call_args <- args
      call_args[arg] <- list(fuzz_values(paths = arg %in% paths, fresh = TRUE)[[v]])
      check <- expect[[arg]][[v]] %||% an_error(NULL)
      # each call in an empty working folder: what one writes the next doesn't see
      said <- check(withr::with_dir(withr::local_tempdir(), fuzz_run(f, call_args)))
      if (!isTRUE(said)) out <- c(out, sprintf("%s(%s = <%s>): %s", name, arg, v, said))
    }
  }
  fuzz_env$count <- (fuzz_env$count %||% 0) + length(fuzz) * length(fuzz_values()) +
    length(intersect(fuzz, paths)) * length(fuzz_files())
  out
}

expect_fuzz <- function(...) {
  failures <- fuzz_case(...)
  expect(length(failures) == 0, paste(c("Bad input gave a wrong outcome:", failures), collapse = "\n"))
}

# Valid inputs the cases start from.
fuzz_data <- function() {
  if (!is.null(fuzz_env$data)) return(fuzz_env$data)
  paths <- file.path(tempdir(), sprintf("img%d.jpg", 1:6))
  preds <- tibble::tibble(path = paths, truth = factor(c("a", "a", "b", "b", "a", "b")),
                          estimate = factor(c("a", "b", "b", "b", "a", "a")))
  corpus <- tibble::tibble(path = sprintf("img%03d.jpg", 1:200),
                           .pred_class = factor(rep(c("protest", "other"), c(60, 140))))
  rek <- file.path(tempdir(), "fuzz.jpg.json")
  writeLines('{"Labels": [{"Name": "Crowd", "Confidence": 97.1, "Parents": []}]}', rek)
  fuzz_env$data <- list(
    images = tibble::tibble(path = paths, label = rep(c("cat", "dog"), 3)),
    preds = preds, corpus = corpus, rekognition = rek,
    tags = tibble::tibble(path = paths, tag = "crowd", confidence = seq(0.5, 0.95, length.out = 6)),
    truth = tibble::tibble(path = paths, protest = rep(c(TRUE, FALSE), 3)),
    labels = data.frame(path = rep(paths, 2), coder = rep(c("ann", "bob"), each = 6),
                        label = rep(c("cat", "dog", "dog"), 4)),
    faces = tibble::tibble(path = paths[1:2], face = 1:2, confidence = c(0.9, 0.8),
                           xmin = 1, ymin = 1, xmax = 20, ymax = 20),
    ratings = data.frame(image = c("a.jpg", "b.jpg"), protest = c(8, 0), riot = c(1, 0)),
    embeddings = tibble::tibble(path = paths, embedding = matrix(seq_len(24) / 24, 6),
                                who = rep(c("a", "b", "c"), each = 2))
  )
  fuzz_env$data
}

test_that("the metrics and tables take only what they can use", {
  d <- fuzz_data()
  metric_args <- list(data = d$preds, truth = quote(truth), estimate = quote(estimate))
  for (fn in c("image_accuracy", "image_precision", "image_recall", "image_f1")) {
    expect_fuzz(fn, metric_args, fuzz = "data", paths = "data")
    expect_fuzz(paste0(fn, "_vec"), list(truth = d$preds$truth, estimate = d$preds$estimate,
                                         event_level = "first", na_rm = TRUE))
  }
  expect_fuzz("image_metrics", c(metric_args, times = 0), paths = "data",
              expect = list(times = list(null = an_error("bad_argument"))))
  expect_fuzz("image_metrics_vec", list(truth = d$preds$truth, estimate = d$preds$estimate,
                                        event_level = "first", conf_level = 0.95, times = 0, seed = 1,
                                        na_rm = TRUE))
  expect_fuzz("confusion", metric_args, paths = "data")
})

test_that("plain-R verbs take only what they can use", {
  d <- fuzz_data()
  expect_fuzz("balance_classes", list(images = d$images, seed = 1), paths = "images")
  expect_fuzz("binarize_scores", list(data = d$ratings, cols = quote(c(protest, riot)), threshold = 3,
                                      margin = 3), paths = "data")
  expect_fuzz("class_colours", list(classes = c("a", "b")),
              expect = list(classes = list(string = a_value(function(v) identical(names(v), "x")))))
  expect_fuzz("count_faces", list(faces = d$faces, confidence = 0.5), paths = "faces",
              expect = list(confidence = list(null = a_value(rows(2)))))
  expect_fuzz("sample_for_coding", list(predictions = d$corpus, n = 10, strata = NULL, seed = 1),
              fuzz = c("n", "strata", "seed"),
              expect = list(strata = list(null = a_value(rows(10)))))
  expect_fuzz("split_images", list(images = d$images, prop = c(train = 0.5, val = 0.5), seed = 1),
              paths = "images")
  expect_fuzz("read_rekognition", list(file = d$rekognition), paths = "file")
  tag_args <- list(tags = d$tags, truth = d$truth, tag = "crowd", label = quote(protest), times = 0)
  # a tag no image has: a valid question, answered with NA precision and a warning
  no_tag <- list(tag = list(string = warned("undefined_metric")))
  expect_fuzz("validate_tags", c(tag_args, min_confidence = 0.5), paths = c("tags", "truth"),
              expect = no_tag)
  expect_fuzz("tag_curve", c(tag_args, min_confidence = list(c(0.5, 0.7))), paths = c("tags", "truth"),
              expect = no_tag)
  expect_fuzz("compare_taggers", list(taggers = list(a = d$tags, b = d$tags), truth = d$truth,
                                      tag = "crowd", label = quote(protest), min_confidence = c(0.5, 0.7),
                                      times = 0),
              paths = "truth", expect = no_tag)
  expect_fuzz("fit_identities", list(x = d$embeddings, identity = quote(who), threshold = 0.6,
                                     method = "nearest"), paths = "x")
  expect_fuzz("label_disagreements", list(labels = d$labels), paths = "labels")
})

test_that("the generics and class_colours() name the argument and what it takes", {
  expect_error(describe(42), "`x`.*classifier", class = "tidyvision_error_bad_argument")
  expect_error(fit_history(NULL), "`x`.*classifier", class = "tidyvision_error_bad_argument")
  expect_error(image_metrics("x"), "`data`.*data frame", class = "tidyvision_error_bad_argument")
  expect_error(image_accuracy(42), "image_accuracy_vec", class = "tidyvision_error_bad_argument")
  expect_error(ggplot2::autoplot(42), "`object`.*tidyvision result", class = "tidyvision_error_bad_argument")
  expect_error(autoplot(object = NULL), "`object`", class = "tidyvision_error_bad_argument")
  expect_error(augment(tibble::tibble()), "`x`.*classifier", class = "tidyvision_error_bad_argument")
  expect_error(explain("a.jpg"), "`x`.*classifier", class = "tidyvision_error_bad_argument")
  expect_error(class_colours(42), "`classes`.*not 42", class = "tidyvision_error_bad_argument")
  expect_error(class_colours(NULL), "`classes`", class = "tidyvision_error_bad_argument")
  expect_error(class_colours(NA), "`classes`", class = "tidyvision_error_bad_argument")
  expect_equal(class_colours(c("b", "a", "b")), c(a = "#0072B2", b = "#E69F00"))
  expect_equal(names(class_colours(factor(character(), levels = c("y", "x")))), c("y", "x"))
})

test_that("the generics answer what they can't use with a classed error", {
  for (fn in c("describe", "fit_history", "autoplot", "augment", "explain", "select_best")) {
    f <- getExportedValue("tidyvision", fn)
    expect_fuzz(fn, rlang::set_names(list(NULL), names(formals(f))[[1]]), paths = names(formals(f))[[1]])
  }
})

# Valid inputs of the engine verbs: a small classifier, faces, embeddings.
fuzz_engine_data <- function() {
  if (!is.null(fuzz_env$engine)) return(fuzz_env$engine)
  d <- fuzz_data()
  sep <- separable_images()
  fit <- small_fit()
  photo <- system.file("extdata", "faces", "biden.jpg", package = "tidyvision")
  saved <- file.path(tempdir(), "tv-fuzz-model")
  save_classifier(fit, saved, overwrite = TRUE)
  coded <- sample_for_coding(d$corpus, n = 40)
  coded$code <- d$corpus$.pred_class[match(coded$path, d$corpus$path)]
  fuzz_env$engine <- list(
    fit = fit, sep = sep, photo = photo, saved = saved, coded = coded,
    faces = detect_faces(photo, model = "hog", upsample = 0, verbose = FALSE),
    emb = image_embeddings(sep[1:4, ], image_size = 32, verbose = FALSE),
    ex = explain(fit, sep[1:2, ], verbose = FALSE),
    aug = augment(fit, sep[sep$split == "val", ], verbose = FALSE),
    est = estimate_prevalence(d$corpus, coded, truth = code)
  )
  fuzz_env$engine
}

test_that("the engine verbs take only what they can use", {
  skip_if_no_engine()
  d <- fuzz_data()
  e <- fuzz_engine_data()
  withr::local_dir(withr::local_tempdir())  # relative paths (`"x"`) land here
  quiet <- list(verbose = FALSE)
  made <- a_value()  # a folder that doesn't exist yet is made
  out_dir <- list(string = made, missing = made, folder = made)
  expect_fuzz(stats::predict, c(list(object = e$fit, new_data = e$sep$path[1:2], type = "prob", batch_size = 4), quiet),
              fuzz = c("new_data", "type", "batch_size", "verbose"), paths = "new_data",
              expect = list(new_data = image_outcomes()))
  expect_fuzz("augment", c(list(x = e$fit, new_data = e$sep[1:2, ]), quiet), fuzz = "new_data",
              paths = "new_data", expect = list(new_data = image_outcomes()))
  expect_fuzz("autotag", c(list(paths = e$sep$path[1:2], model = "imagenet", top_k = 2, batch_size = 4), quiet),
              paths = "paths", expect = list(paths = image_outcomes()))
  expect_fuzz("detect_faces", c(list(paths = e$photo, model = "hog", upsample = 0, confidence = 0.6), quiet),
              paths = "paths", expect = list(paths = image_outcomes()))
  expect_fuzz("face_embeddings", c(list(faces = e$photo, num_jitters = 0), quiet), paths = "faces",
              expect = list(faces = image_outcomes()))
  expect_fuzz("crop_faces", c(list(faces = e$faces, dir = "crops", margin = 0.2, size = NULL, overwrite = TRUE), quiet),
              paths = c("faces", "dir"), expect = list(dir = out_dir, size = list(null = made)))
  expect_fuzz("anonymize_faces", c(list(paths = e$photo, dir = "anon", method = "blur", margin = 0.3,
                                        overwrite = TRUE, model = "hog", upsample = 0, confidence = 0.6), quiet),
              paths = c("paths", "dir"), expect = list(paths = image_outcomes(), dir = out_dir))
  expect_fuzz("find_duplicates", c(list(images = e$sep[1:4, ], method = "phash", max_distance = 8), quiet),
              paths = "images", expect = list(images = image_outcomes()))
  expect_fuzz("image_embeddings", c(list(images = e$sep[1:2, ], image_size = 32, resize = "rescale_crop",
                                         batch_size = 4), quiet),
              paths = "images", expect = list(images = image_outcomes()))
  expect_fuzz("similar_images", c(list(query = e$emb[1, ], pool = e$emb, k = 2), quiet), paths = c("query", "pool"),
              # an unreadable query has no neighbours (0 rows, a warning)
              expect = list(query = image_outcomes(), pool = image_outcomes()))
  expect_fuzz("suggest_labels", c(list(fit = e$fit, unlabeled = e$sep[1:4, ], n = 2, strategy = "margin",
                                       diversity = FALSE, seed = 1, image_size = 32, batch_size = 4), quiet),
              paths = "unlabeled", expect = list(unlabeled = image_outcomes(empty = an_error("no_images"))))
  expect_fuzz("explain", c(list(x = e$fit, images = e$sep[1, ], class = NULL, batch_size = 4, dir = NULL,
                                overwrite = TRUE), quiet),
              paths = c("images", "dir"),
              expect = list(images = image_outcomes(), class = list(null = made),
                            dir = c(out_dir, list(null = made))))
  expect_fuzz("load_classifier", list(dir = e$saved), paths = "dir")
  expect_fuzz("save_classifier", list(fit = e$fit, dir = "model", overwrite = FALSE), paths = c("fit", "dir"),
              expect = list(dir = list(string = made, missing = made)))
  expect_fuzz("tv_cache", list(budget_gb = NULL), expect = list(budget_gb = list(null = made)))
  expect_fuzz("tv_cache_clear", list(space = NULL), expect = list(space = list(null = made)))
})

test_that("the engine's plots and reports take only what they can use", {
  skip_if_no_engine()
  d <- fuzz_data()
  e <- fuzz_engine_data()
  withr::local_dir(withr::local_tempdir())
  plot <- a_value(is_plot)
  layout <- list(null = plot)
  caption <- list(null = plot, string = plot)
  expect_fuzz("plot_images", list(images = e$sep[1:4, ], n = 2, size = 32, ncol = NULL, seed = 1, caption = NULL),
              paths = "images",
              # an unreadable image is a "can't read" tile
              expect = list(images = c(image_outcomes(unreadable = plot, empty = an_error("no_images")),
                                       list(unicode = plot)),
                            size = layout, ncol = layout, caption = caption))
  expect_fuzz("plot_resizing", list(path = e$photo, size = 32, caption = NULL), paths = "path",
              expect = list(path = list(unicode = plot), caption = caption))
  expect_fuzz("plot_augmentation", list(path = e$photo, n = 2, size = 32, seed = 1, caption = NULL), paths = "path",
              expect = list(path = list(unicode = plot), caption = caption))
  expect_fuzz("plot_errors", list(data = e$aug, truth = quote(label), n = 2, size = 32, ncol = NULL, caption = NULL),
              paths = "data", expect = list(size = layout, ncol = layout, caption = caption))
  expect_fuzz("plot_explanations", list(x = e$ex, n = 2, alpha = 0.5, ncol = NULL, caption = NULL), paths = "x",
              expect = list(ncol = layout, caption = caption))
  expect_fuzz("plot_faces", list(faces = e$faces, n = 2, size = 64, ncol = NULL, caption = NULL), paths = "faces",
              expect = list(ncol = layout, caption = caption))
  expect_fuzz("plot_embeddings", c(list(x = e$emb, color = quote(label), method = "pca", thumbnails = FALSE,
                                        n_thumbnails = 3, seed = 1), verbose = FALSE),
              fuzz = c("color", "method", "thumbnails", "n_thumbnails", "seed", "verbose"),
              expect = list(color = layout))
  expect_fuzz("describe", list(x = e$fit, data = NULL, group = NULL, format = "markdown"),
              fuzz = c("data", "group", "format"), paths = "data",
              expect = list(data = list(null = a_value(is.character)), group = list(null = a_value(is.character))))
  expect_fuzz("describe", list(x = e$est, format = "markdown"), fuzz = "format")
  expect_fuzz("fit_history", list(x = e$fit), paths = "x")
  expect_fuzz("autoplot", list(object = e$fit), paths = "object")
  expect_fuzz("estimate_prevalence", list(predictions = d$corpus, coded = e$coded, truth = quote(code),
                                          training = NULL, level = 0.95, method = "ppi++"),
              fuzz = c("coded", "truth", "training", "level", "method"), paths = "coded",
              expect = list(training = list(null = a_value(), string = a_value())))
  expect_fuzz("plan_coding", list(predictions = d$corpus, coded = NULL, truth = NULL, width = 0.1, level = 0.95,
                                  correlation = 0.7),
              fuzz = c("coded", "truth", "width", "level", "correlation"),
              expect = list(coded = list(null = a_value()), truth = list(null = a_value())))
  expect_fuzz("label_agreement", list(labels = d$labels, level = NULL, classes = NULL, conf_level = 0.95,
                                      times = 20, seed = 1), paths = "labels",
              expect = list(level = list(null = a_value()), classes = list(null = a_value())))
})

test_that("training verbs check their arguments before training", {
  skip_if_no_engine()
  e <- fuzz_engine_data()
  ft <- list(images = e$sep, epochs = 1, learning_rate = 0.01, momentum = 0.9, batch_size = 8, step_size = 7,
             gamma = 0.1, train_layers = "head", weights = NULL, resize = "rescale_crop", image_size = 32,
             augment = TRUE, seed = 1, device = "auto", precision = "auto", class_weights = NULL, verbose = FALSE)
  expect_fuzz("fine_tune", ft, fuzz = setdiff(names(ft), c("weights", "class_weights")), paths = "images")
  expect_fuzz("tune_grid", list(images = e$sep, grid = list(learning_rate = 0.01), epochs = 1, image_size = 32,
                                verbose = FALSE), paths = "images")
  expect_fuzz("learning_curve", list(images = e$sep, sizes = c(4, 8), reps = 1, seed = 1, image_size = 32,
                                     times = 20, verbose = FALSE),
              fuzz = c("images", "reps", "seed", "image_size", "times", "verbose"), paths = "images")
  expect_fuzz("find_label_issues", list(images = e$sep, folds = 2, seed = 1, image_size = 32,
                                        resize = "rescale_crop", batch_size = 8, verbose = FALSE), paths = "images")
})

test_that("a folder that can't be written is named, not reported as a bug", {
  skip_if_no_engine()
  e <- fuzz_engine_data()
  locked <- local_unwritable_dir()
  expect_error(save_classifier(e$fit, file.path(locked, "model")), "can't write", ignore.case = TRUE,
               class = "tidyvision_error_not_writable")
  expect_error(explain(e$fit, e$sep[1:2, ], dir = locked, verbose = FALSE), basename(locked),
               class = "tidyvision_error_not_writable")
  expect_error(crop_faces(e$faces, locked, verbose = FALSE), basename(locked),
               class = "tidyvision_error_not_writable")
  expect_error(anonymize_faces(e$photo, locked, model = "hog", upsample = 0, verbose = FALSE), basename(locked),
               class = "tidyvision_error_not_writable")
  expect_error(explain(e$fit, e$sep[1:2, ], dir = file.path(locked, "heatmaps"), verbose = FALSE),
               class = "tidyvision_error_not_writable")
  expect_length(list.files(locked, all.files = TRUE, no.. = TRUE), 0)
})

test_that("install_tidyvision() checks its arguments before making anything", {
  # (not in the loop: a valid-looking bad name would make a virtualenv)
  for (bad in list(NULL, NA, -1.5, "", tibble::tibble())) {
    expect_error(install_tidyvision(envname = bad), "envname", class = "tidyvision_error_bad_argument")
    expect_error(install_tidyvision(force = bad), "force", class = "tidyvision_error_bad_argument")
    expect_error(install_tidyvision(quiet = bad), "quiet", class = "tidyvision_error_bad_argument")
  }
  files <- fuzz_files()
  for (bad in list(NA, -1.5, files$missing, files$folder)) {
    expect_error(install_tidyvision(python = bad), "python", class = "tidyvision_error_bad_argument")
  }
})
