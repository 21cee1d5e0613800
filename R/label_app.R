# The labelling app behind label_images(): a state (an environment mirroring
# this coder's rows of the label file), the keys that change it, and the
# Shiny UI and server that show it. Every key is handled on the server, in the
# order pressed, so the file and the screen never disagree.

# The state, replayed from the label file: per image a stack of this coder's
# labels (NA for a skip), and the images of those labels in the order given,
# for undo.
label_state <- function(paths, classes, mode, output, coder, call = caller_env()) {
  rows <- read_label_log(output, call)$rows
  eff <- label_effective(rows[rows$coder == coder & rows$path %in% paths, , drop = FALSE])
  st <- new.env(parent = emptyenv())
  st$paths <- paths
  st$classes <- classes
  st$mode <- mode
  st$output <- output
  st$coder <- coder
  st$history <- match(eff$path, paths)
  st$stacks <- unname(split(eff$label, factor(st$history, levels = seq_along(paths))))
  lab_goto(st, lab_resume(st))
  st
}

lab_top <- function(st, i = st$i) {
  s <- st$stacks[[i]]
  if (length(s)) s[[length(s)]] else NULL
}

# Labelled or skipped; with scores, every class scored.
lab_done <- function(st, i) {
  top <- lab_top(st, i)
  !is.null(top) && (st$mode != "scores" || is.na(top) || !anyNA(label_scores(top, st$classes)))
}

# The first image this coder has not done, or the first image when all are done.
lab_resume <- function(st) {
  todo <- which(!vapply(seq_along(st$paths), function(i) lab_done(st, i), TRUE))
  if (length(todo)) todo[[1]] else 1L
}

# Show image `i`, with the classes (multi) or scores it has.
lab_goto <- function(st, i) {
  st$i <- max(1L, min(as.integer(i), length(st$paths)))
  top <- lab_top(st)
  label <- if (is.null(top) || is.na(top)) NULL else top
  st$pending <- switch(st$mode,
    classes = label,
    multi = if (!is.null(label)) strsplit(label, "|", fixed = TRUE)[[1]] else character(),
    scores = if (!is.null(label)) label_scores(label, st$classes)[1, ] else rep(NA_real_, length(st$classes))
  )
  st$sel <- if (st$mode == "scores" && anyNA(st$pending)) which(is.na(st$pending))[[1]] else 1L
  invisible(st)
}

lab_advance <- function(st) {
  if (st$i < length(st$paths)) return(lab_goto(st, st$i + 1L))
  st$note <- "That was the last image."
  invisible(st)
}

# Append the row first: the screen only changes once the key is on disk.
lab_record <- function(st, action, label = NA_character_) {
  append_label_row(st$output, st$paths[[st$i]], st$coder, action, label)
  st$stacks[[st$i]] <- c(st$stacks[[st$i]], label)
  st$history <- c(st$history, st$i)
  lab_goto(st, st$i)
}

lab_undo <- function(st) {
  if (!length(st$history)) {
    st$note <- "Nothing to undo."
    return(invisible(st))
  }
  i <- st$history[[length(st$history)]]
  append_label_row(st$output, st$paths[[i]], st$coder, "undo")
  st$history <- st$history[-length(st$history)]
  st$stacks[[i]] <- st$stacks[[i]][-length(st$stacks[[i]])]
  lab_goto(st, i)
}

# One key, as the browser names it (KeyboardEvent.key; "BackTab" for Shift+Tab).
label_key <- function(st, key) {
  st$note <- NULL
  if (!rlang::is_string(key)) return(invisible(st))
  switch(key,
    ArrowRight = lab_goto(st, st$i + 1L),
    ArrowLeft = lab_goto(st, st$i - 1L),
    u = lab_undo(st),
    s = lab_advance(lab_record(st, "skip")),
    switch(st$mode, classes = key_classes(st, key), multi = key_multi(st, key), scores = key_scores(st, key))
  )
  invisible(st)
}

key_digit <- function(key, st) {
  k <- match(key, as.character(seq_along(st$classes)))
  if (is.na(k)) NULL else k
}

key_classes <- function(st, key) {
  k <- key_digit(key, st)
  if (!is.null(k)) lab_advance(lab_record(st, "label", st$classes[[k]]))
}

key_multi <- function(st, key) {
  k <- key_digit(key, st)
  if (!is.null(k)) {
    cls <- st$classes[[k]]
    st$pending <- if (cls %in% st$pending) setdiff(st$pending, cls) else c(st$pending, cls)
  } else if (key == "Enter") {
    if (!length(st$pending)) {
      st$note <- "Pick at least one class, or press s to skip."
    } else {
      lab_advance(lab_record(st, "label", label_encode("multi", st$classes, st$pending)))
    }
  }
}

key_scores <- function(st, key) {
  n <- length(st$classes)
  value <- match(key, c(as.character(0:9), "t")) - 1
  if (!is.na(value)) {
    scores <- replace(st$pending, st$sel, value)
    sel <- st$sel
    was_done <- !anyNA(st$pending)
    lab_record(st, "label", label_encode("scores", st$classes, scores))
    # Go on once every class has a score (in a finished image, after the last class).
    if (!anyNA(scores) && (!was_done || sel == n)) lab_advance(st) else if (sel < n) st$sel <- sel + 1L
  } else if (key %in% c("Tab", "ArrowDown")) {
    st$sel <- st$sel %% n + 1L
  } else if (key %in% c("BackTab", "ArrowUp")) {
    st$sel <- (st$sel - 2L) %% n + 1L
  } else if (key == "Enter") {
    if (!lab_done(st, st$i)) lab_record(st, "label", label_encode("scores", st$classes, replace(st$pending, is.na(st$pending), 0)))
    lab_advance(st)
  }
}

label_progress <- function(st) {
  tops <- lapply(seq_along(st$paths), function(i) lab_top(st, i))
  skipped <- vapply(tops, function(t) !is.null(t) && is.na(t), TRUE)
  done <- vapply(seq_along(st$paths), function(i) lab_done(st, i), TRUE)
  list(n = length(st$paths), labelled = sum(done & !skipped), skipped = sum(skipped))
}

label_server <- function(st, input, output, session) {
  base <- register_images(session, st$paths)
  tick <- shiny::reactiveVal(0)
  shown <- shiny::reactiveVal(st$i)
  shiny::observeEvent(input$key, {
    label_key(st, input$key$key)
    shown(st$i)
    tick(tick() + 1)
  })
  shiny::observeEvent(input$done, shiny::stopApp())
  output$image <- shiny::renderUI(label_image_ui(st, base, shown()))
  output$side <- shiny::renderUI({
    tick()
    label_side_ui(st)
  })
}

# Images are served by their number in the queue, never by a path from the URL.
register_images <- function(session, paths) {
  # testServer()'s mock session has no data objects (and no HTTP).
  if (!is.function(session$registerDataObj)) return("image?")
  session$registerDataObj("image", paths, serve_image)
}

serve_image <- function(paths, req) {
  query <- req$QUERY_STRING %||% ""
  hit <- regmatches(query, regexec("(?:^\\??|&)i=([0-9]{1,9})(?:&|$)", query, perl = TRUE))[[1]]
  i <- if (length(hit)) as.integer(hit[[2]]) else NA_integer_
  if (is.na(i) || i < 1L || i > length(paths) || !file.exists(paths[[i]])) {
    return(shiny::httpResponse(404L, "text/plain", "Not found"))
  }
  shiny::httpResponse(200L, image_content_type(paths[[i]]), list(file = paths[[i]], owned = FALSE),
                      headers = list(`Cache-Control` = "private, max-age=3600", `X-Content-Type-Options` = "nosniff"))
}

image_content_type <- function(path) {
  ext <- tolower(sub(".*\\.", "", basename(path)))
  types <- c(jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", gif = "image/gif",
             bmp = "image/bmp", tif = "image/tiff", tiff = "image/tiff", webp = "image/webp")
  if (ext %in% names(types)) types[[ext]] else "application/octet-stream"
}

label_ui <- function(st) {
  www <- system.file("label_app", package = "tidyvision")
  miniUI::miniPage(
    shiny::tags$head(shiny::includeCSS(file.path(www, "label_app.css")),
                     shiny::includeScript(file.path(www, "label_app.js"))),
    miniUI::gadgetTitleBar(paste("Labelling as", st$coder), left = NULL,
                           right = miniUI::miniTitleBarButton("done", "Done", primary = TRUE)),
    miniUI::miniContentPanel(
      padding = 0, scrollable = FALSE,
      shiny::div(class = "tv-label",
                 shiny::uiOutput("image", class = "tv-label-image"),
                 shiny::uiOutput("side", class = "tv-label-side"))
    ),
    label_help_ui(st$mode)
  )
}

# The image (and the next one, hidden, so it is in the browser's cache).
label_image_ui <- function(st, base, i) {
  src <- function(j) paste0(base, "&i=", j)
  shiny::tagList(
    shiny::tags$img(id = "tv-label-img", src = src(i), alt = basename(st$paths[[i]])),
    if (i < length(st$paths)) shiny::tags$img(class = "tv-label-next", src = src(i + 1L), alt = "")
  )
}

label_side_ui <- function(st) {
  p <- label_progress(st)
  shiny::tagList(
    shiny::div(class = "tv-label-file", basename(st$paths[[st$i]])),
    shiny::div(class = "tv-label-count", sprintf("Image %d of %d", st$i, p$n)),
    shiny::div(class = "tv-label-bar", shiny::div(style = sprintf("width:%.1f%%", 100 * (p$labelled + p$skipped) / p$n))),
    shiny::div(class = "tv-label-count", sprintf("%s: %d labelled, %d skipped, %d to go", st$coder,
                                                 p$labelled, p$skipped, p$n - p$labelled - p$skipped)),
    label_classes_ui(st),
    if (identical(lab_top(st), NA_character_)) shiny::div(class = "tv-label-note", "Skipped."),
    if (p$labelled + p$skipped == p$n) shiny::div(class = "tv-label-note", "All images done: press Done."),
    if (!is.null(st$note)) shiny::div(class = "tv-label-note", st$note),
    label_legend_ui(st)
  )
}

# The keys in brief, always in view; `?` opens the full list.
label_legend_ui <- function(st) {
  keys <- switch(st$mode,
    classes = c(paste0("1-", length(st$classes)), "label"),
    multi = c(paste0("1-", length(st$classes)), "toggle", "Enter", "save"),
    scores = c("0-9", "score", "t", "10", "Tab \u2191\u2193", "class", "Enter", "rest 0")
  )
  keys <- c(keys, "\u2190 \u2192", "move", "s", "skip", "u", "undo", "?", "all keys")
  pairs <- matrix(keys, nrow = 2)
  shiny::div(class = "tv-label-hint", lapply(seq_len(ncol(pairs)), function(j) {
    shiny::span(class = "tv-label-key", shiny::tags$kbd(pairs[1, j]), pairs[2, j])
  }))
}

# One row per class with its key; the current label (or the toggled classes,
# or the scores with the selected class) highlighted.
label_classes_ui <- function(st) {
  rows <- lapply(seq_along(st$classes), function(k) {
    cls <- st$classes[[k]]
    if (st$mode == "scores") {
      score <- st$pending[[k]]
      on <- k == st$sel
      key <- shiny::span(class = "tv-label-score", if (is.na(score)) "\u2013" else score)
    } else {
      on <- cls %in% st$pending
      key <- shiny::tags$kbd(k)
    }
    shiny::div(class = paste("tv-label-class", if (on) "tv-on"), `data-key` = k, key, shiny::span(cls))
  })
  shiny::div(class = paste0("tv-label-classes tv-mode-", st$mode), rows)
}

LABEL_KEYS <- list(
  classes = c("1-9" = "pick that class and go to the next image"),
  multi = c("1-9" = "toggle that class", "Enter" = "save the classes and go to the next image"),
  scores = c("0-9" = "score the selected class and select the next (once all are scored, the next image)", "t" = "score it 10",
             "Tab / \u2193" = "select the next class", "Shift+Tab / \u2191" = "select the previous class",
             "Enter" = "score the rest 0 and go to the next image"),
  all = c("\u2190 / \u2192" = "previous / next image", "s" = "skip this image",
          "u" = "undo your last label or skip", "?" = "show or hide these keys")
)

label_help_ui <- function(mode) {
  keys <- c(LABEL_KEYS[[mode]], LABEL_KEYS$all)
  shiny::div(
    id = "tv-label-help", class = "tv-label-help",
    shiny::h4("Keys"),
    shiny::tags$table(lapply(names(keys), function(k) {
      shiny::tags$tr(shiny::tags$td(shiny::tags$kbd(k)), shiny::tags$td(keys[[k]]))
    })),
    shiny::p("Every key is saved at once. Run the same call again to continue where you left off.")
  )
}
