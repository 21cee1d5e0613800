# Who may talk to the labelling app. It listens on 127.0.0.1, but any page
# open in the coder's browser can reach 127.0.0.1 too: a page on another
# origin could open the app's websocket (and read file names, or label as the
# coder), and a DNS-rebinding page could fetch the images under its own host
# name. So every request must name the app itself as its Host, every
# websocket must come from the app's own page (Origin), and every image URL
# and key message must carry the token that only the app's own page holds.

# The Host values that name this app: its loopback address or localhost, with
# its port. Any other name (a rebinding domain, a LAN address) is refused.
label_hosts <- function(port) paste0(c("127.0.0.1", "localhost"), ":", port)

label_host_ok <- function(req, port) {
  host <- req$HTTP_HOST
  rlang::is_string(host) && tolower(host) %in% label_hosts(port)
}

# A websocket: the Host as above, and an Origin that is the app's own page
# (browsers always send one on a websocket; none at all is refused too).
label_socket_ok <- function(req, port) {
  origin <- req$HTTP_ORIGIN
  label_host_ok(req, port) && rlang::is_string(origin) &&
    tolower(origin) %in% paste0("http://", label_hosts(port))
}

# 128 random bits, from the OS where it has /dev/urandom: R's own RNG is the
# user's (set.seed() would make the token guessable), so it is used only as a
# fallback, seeded apart from the user's stream.
label_token <- function() {
  bytes <- if (file.exists("/dev/urandom")) {
    con <- file("/dev/urandom", "rb", raw = TRUE)
    on.exit(close(con))
    readBin(con, "raw", 16L)
  } else {
    seed <- as.integer((as.numeric(Sys.time()) * 1000 + Sys.getpid()) %% .Machine$integer.max)
    as.raw(withr::with_seed(seed, sample.int(256L, 16L, replace = TRUE) - 1L))
  }
  paste(format(bytes), collapse = "")
}

label_token_ok <- function(token, st) rlang::is_string(token) && identical(token, st$token)

forbidden <- function() shiny::httpResponse(403L, "text/plain", "Forbidden")

# The page, only for a request that names this app as its Host.
label_page <- function(st) {
  ui <- label_ui(st)
  function(req) if (label_host_ok(req, st$port)) ui else forbidden()
}

# Images are served by their number in the queue, never by a path from the
# URL, and only with this app's Host and token.
register_images <- function(session, st) {
  # testServer()'s mock session has no data objects (and no HTTP).
  if (!is.function(session$registerDataObj)) return("image?")
  session$registerDataObj("image", st, serve_image)
}

serve_image <- function(st, req) {
  if (!label_host_ok(req, st$port) || !label_token_ok(query_value(req, "t"), st)) return(forbidden())
  i <- suppressWarnings(as.integer(query_value(req, "i", "[0-9]{1,9}")))
  paths <- st$paths
  if (is.na(i) || i < 1L || i > length(paths) || !file.exists(paths[[i]])) {
    return(shiny::httpResponse(404L, "text/plain", "Not found"))
  }
  shiny::httpResponse(200L, image_content_type(paths[[i]]), list(file = paths[[i]], owned = FALSE),
                      headers = list(`Cache-Control` = "private, max-age=3600", `X-Content-Type-Options` = "nosniff"))
}

# One value of the query string, when it is all `pattern`; NA otherwise.
query_value <- function(req, name, pattern = "[0-9a-f]{1,64}") {
  query <- req$QUERY_STRING %||% ""
  hit <- regmatches(query, regexec(paste0("(?:^\\??|&)", name, "=(", pattern, ")(?:&|$)"), query, perl = TRUE))[[1]]
  if (length(hit)) hit[[2]] else NA_character_
}

image_content_type <- function(path) {
  ext <- tolower(sub(".*\\.", "", basename(path)))
  types <- c(jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png", gif = "image/gif",
             bmp = "image/bmp", tif = "image/tiff", tiff = "image/tiff", webp = "image/webp")
  if (ext %in% names(types)) types[[ext]] else "application/octet-stream"
}
