# The labelling app behind label_images(): a state (an environment mirroring
# this coder's rows of the label file), the keys that change it, and the
# Shiny UI and server that show it. Every key is handled on the server, in the
# order pressed, so the file and the screen never disagree.

# The state, replayed from the label file: per image a stack of this coder's
# labels (NA for a skip), and the images of those labels in the order given,
# for undo. Those live in `data`, shared by every tab; the image shown, the
# classes toggled and the key counter are each tab's own (a view, see
# label_view()), so a key only ever applies to the image its tab shows. The
# state itself is the first view.
label_state <- function(paths, classes, mode, output, coder, port = NULL, call = caller_env()) {
  rows <- read_label_log(output, call)$rows
  eff <- label_effective(rows[rows$coder == coder & rows$path %in% paths, , drop = FALSE])
  st <- new.env(parent = emptyenv())
  st$paths <- paths
  st$classes <- classes
  st$mode <- mode
  st$output <- output
  st$header <- readLines(output, n = 1L, warn = FALSE, encoding = "UTF-8")
  st$coder <- coder
  st$port <- port
  st$token <- label_token()
  st$data <- new.env(parent = emptyenv())
  st$data$history <- match(eff$path, paths)
  st$data$stacks <- unname(split(eff$label, factor(st$data$history, levels = seq_along(paths))))
  st$n <- 0
  lab_goto(st, lab_resume(st))
  st
}

LABEL_SHARED <- c("paths", "classes", "mode", "output", "header", "coder", "port", "token", "data")

# A new tab's view: the shared labels, its own image (this coder's first not
# done), selection and key counter.
label_view <- function(st) {
  v <- new.env(parent = emptyenv())
  for (f in LABEL_SHARED) assign(f, st[[f]], envir = v)
  v$n <- 0
  lab_goto(v, lab_resume(v))
}

lab_top <- function(st, i = st$i) {
  s <- st$data$stacks[[i]]
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
  lab_write(st, st$paths[[st$i]], action, label)
  d <- st$data
  d$stacks[[st$i]] <- c(d$stacks[[st$i]], label)
  d$history <- c(d$history, st$i)
  lab_goto(st, st$i)
}

lab_undo <- function(st) {
  d <- st$data
  if (!length(d$history)) {
    st$note <- "Nothing to undo."
    return(invisible(st))
  }
  i <- d$history[[length(d$history)]]
  lab_write(st, st$paths[[i]], "undo")
  d$history <- d$history[-length(d$history)]
  d$stacks[[i]] <- d$stacks[[i]][-length(d$stacks[[i]])]
  lab_goto(st, i)
}

# A label file deleted or replaced while the app runs would be appended to
# without its header, and nothing could read it: stop instead, keeping the
# key unsaved, and say so.
lab_write <- function(st, path, action, label = NA_character_) {
  head <- if (file.exists(st$output)) readLines(st$output, n = 1L, warn = FALSE, encoding = "UTF-8")
  if (!identical(head, st$header)) {
    tv_abort(c("The label file {.path {st$output}} was deleted or replaced while the app ran.",
               x = "The last key was not saved, and the app stopped.",
               i = "Restore the file (it holds every earlier key), then run {.fn label_images} again to continue."),
             class = "labels_file", call = NULL)
  }
  append_label_row(st$output, path, st$coder, action, label)
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

# One key message from a tab: `key`, the counter `n` (1, 2, ... per tab),
# the `image` it was pressed on and the app's `token`. A replayed or
# out-of-order counter, and a key pressed on an image this tab no longer shows
# (two quick keys: the second was pressed before the next image appeared),
# are refused. The answer is the page's acknowledgement.
label_message <- function(v, msg) {
  n <- if (is.list(msg)) msg$n
  ack <- list(n = if (is.numeric(n) && length(n) == 1) n else NA, ok = FALSE)
  if (!is.list(msg) || !label_token_ok(msg$token, v)) return(c(ack, why = "token"))
  if (!is.numeric(n) || length(n) != 1 || is.na(n) || n != v$n + 1) return(c(ack, why = "counter"))
  v$n <- n
  ack$ok <- TRUE
  if (identical(msg$key, "Done")) return(c(ack, done = TRUE))
  image <- msg$image
  if (!is.numeric(image) || length(image) != 1 || !identical(as.integer(image), v$i)) {
    v$note <- "A key pressed on the previous image was ignored."
    return(utils::modifyList(ack, list(ok = FALSE, why = "stale")))
  }
  done <- tryCatch(label_key(v, msg$key), tidyvision_error_labels_file = function(e) e)
  if (inherits(done, "error")) {
    v$note <- cli::ansi_strip(conditionMessage(done))
    return(utils::modifyList(ack, list(ok = FALSE, why = "file", stop = list(done))))
  }
  ack
}

label_server <- function(st, input, output, session) {
  # A websocket from another Host or Origin is closed before any output is sent on it
  # or any observer is registered (testServer()'s mock session has no socket).
  if (!inherits(session, "MockShinySession") && !label_socket_ok(session$request, st$port)) {
    session$close()
    return(invisible())
  }
  view <- label_view(st)
  session$userData$tv_view <- view
  base <- register_images(session, st)
  tick <- shiny::reactiveVal(0)
  shown <- shiny::reactiveVal(view$i)
  shiny::observeEvent(input$key, {
    ack <- label_message(view, input$key)
    if (identical(ack$why, "token")) return(session$close())
    shown(view$i)
    tick(tick() + 1)
    session$sendCustomMessage("tv-label-ack", ack[c("n", "ok")])
    if (!is.null(ack$stop)) shiny::stopApp(ack$stop[[1]])
    if (isTRUE(ack$done)) shiny::stopApp()
  })
  output$image <- shiny::renderUI(label_image_ui(view, base, shown()))
  output$side <- shiny::renderUI({
    tick()
    label_side_ui(view)
  })
}

label_ui <- function(st) {
  www <- system.file("label_app", package = "tidyvision")
  miniUI::miniPage(
    shiny::tags$head(shiny::tags$meta(name = "tv-label-token", content = st$token),
                     shiny::includeCSS(file.path(www, "label_app.css")),
                     shiny::includeScript(file.path(www, "label_app.js"))),
    miniUI::gadgetTitleBar(paste("Labelling as", st$coder), left = NULL,
                           right = miniUI::miniTitleBarButton("done", "Done", primary = TRUE)),
    miniUI::miniContentPanel(
      padding = 0, scrollable = FALSE,
      shiny::div(class = "tv-label",
                 shiny::uiOutput("image", class = "tv-label-image"),
                 shiny::uiOutput("side", class = "tv-label-side")),
      shiny::div(id = "tv-label-pending", class = "tv-label-pending")
    ),
    label_help_ui(st$mode)
  )
}

# The image (and the next one, hidden, so it is in the browser's cache).
label_image_ui <- function(st, base, i) {
  src <- function(j) paste0(base, "&t=", st$token, "&i=", j)
  shiny::tagList(
    shiny::tags$img(id = "tv-label-img", src = src(i), alt = basename(st$paths[[i]]), `data-i` = i),
    if (i < length(st$paths)) shiny::tags$img(class = "tv-label-next", src = src(i + 1L), alt = "")
  )
}

label_side_ui <- function(st) {
  p <- label_progress(st)
  shiny::tagList(
    shiny::div(class = "tv-label-file", breakable_name(basename(st$paths[[st$i]]))),
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
    shiny::p("Every key is saved before the next is sent (\"keys pending\" counts those not saved yet).",
             "Run the same call again to continue where you left off.")
  )
}

# A long file name wraps after its separators (_ - . and spaces), not in the
# middle of a word; a single overlong word still wraps (CSS overflow-wrap).
breakable_name <- function(name) {
  parts <- regmatches(name, gregexpr("[^_.-]*[_.-]*", name))[[1]]
  escaped <- vapply(parts[nzchar(parts)], function(p) as.character(shiny::span(p)), "")
  # <span>s with <wbr> between them and no whitespace, so the text reads as the name
  shiny::HTML(gsub("</?span>", "", paste(escaped, collapse = "<wbr>")))
}
