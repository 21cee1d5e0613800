# Who may talk to the labelling app: Host, Origin and token checks, and key
# messages (counter, image). The same checks against the running app, with
# raw sockets and a real browser page on another origin, are in
# tests/python/test_label_app.py.

security_app <- function(n = 3, port = 4321L) {
  imgs <- example_images(n)
  out <- withr::local_tempfile(fileext = ".csv", .local_envir = parent.frame())
  app <- label_app(imgs, c("animals", "buildings", "tools"), out, coder = "ana", port = port)
  list(app = app, st = app$tv_state, imgs = imgs, out = out)
}

key_msg <- function(v, key, n = v$n + 1, image = v$i, token = v$token) {
  list(key = key, n = n, image = image, token = token)
}

test_that("only requests that name the app itself as Host are answered", {
  expect_true(label_host_ok(list(HTTP_HOST = "127.0.0.1:4321"), 4321L))
  expect_true(label_host_ok(list(HTTP_HOST = "localhost:4321"), 4321L))
  for (host in list("evil.example:4321", "evil.example", "127.0.0.1", "127.0.0.1:4322", "192.168.1.5:4321",
                    "127.0.0.1:4321.evil.example", "", NULL, c("127.0.0.1:4321", "x"))) {
    expect_false(label_host_ok(list(HTTP_HOST = host), 4321L), label = deparse(host))
  }
  ok <- list(HTTP_HOST = "127.0.0.1:4321", HTTP_ORIGIN = "http://127.0.0.1:4321")
  expect_true(label_socket_ok(ok, 4321L))
  expect_true(label_socket_ok(list(HTTP_HOST = "localhost:4321", HTTP_ORIGIN = "http://localhost:4321"), 4321L))
  for (origin in list("http://evil.example", "http://evil.example:4321", "http://127.0.0.1:4322", "null",
                      "https://127.0.0.1:4321", "", NULL)) {
    expect_false(label_socket_ok(utils::modifyList(ok, list(HTTP_ORIGIN = origin)), 4321L), label = deparse(origin))
  }
  expect_false(label_socket_ok(utils::modifyList(ok, list(HTTP_HOST = "evil.example:4321")), 4321L))
})

test_that("the page is refused to another Host; it carries the session's token", {
  a <- security_app()
  page <- label_page(a$st)
  refused <- page(list(HTTP_HOST = "evil.example:4321"))
  expect_equal(refused$status, 403L)
  # The token is the content of the page's <meta name="tv-label-token"> (in its head).
  expect_true(a$st$token %in% unlist(page(list(HTTP_HOST = "127.0.0.1:4321"))))
  expect_match(a$st$token, "^[0-9a-f]{32}$")
  expect_false(identical(a$st$token, security_app()$st$token))
})

test_that("images are served by number only, with the app's Host and token", {
  a <- security_app(2)
  serve <- function(query, host = "127.0.0.1:4321") serve_image(a$st, list(QUERY_STRING = query, HTTP_HOST = host))
  t <- paste0("&t=", a$st$token)
  ok <- serve(paste0("?w=&nonce=abc", t, "&i=2"))
  expect_equal(ok$status, 200L)
  expect_equal(ok$content$file, a$imgs[2])
  expect_equal(ok$content_type, "image/jpeg")
  expect_equal(serve(paste0("?w=", t, "&i=2"), host = "evil.example:4321")$status, 403L)
  expect_equal(serve(paste0("?w=", t, "&i=2"), host = NULL)$status, 403L)
  expect_equal(serve("?w=&i=2")$status, 403L)
  expect_equal(serve("?w=&t=0123456789abcdef0123456789abcdef&i=2")$status, 403L)
  for (bad in c("&i=0", "&i=3", "&i=-1", "&i=../../etc/passwd", "&i=/etc/passwd", paste0("&i=", a$imgs[1]),
                "&i=1/../x", "&i=1e0", "", "&path=/etc/passwd")) {
    expect_equal(serve(paste0("?w=", t, bad))$status, 404L, label = bad)
  }
})

test_that("a key message needs the token, the next counter and the image its tab shows", {
  a <- security_app()
  v <- label_view(a$st)
  expect_equal(label_message(v, key_msg(v, "1", token = "0123"))$why, "token")
  expect_equal(label_message(v, key_msg(v, "1", token = NULL))$why, "token")
  expect_equal(label_message(v, "1")$why, "token")
  expect_equal(label_message(v, key_msg(v, "1", n = 2))$why, "counter")  # out of order
  expect_false(file.exists(a$out) && nrow(label_rows(a$out)) > 0)
  expect_true(label_message(v, key_msg(v, "1"))$ok)
  expect_equal(nrow(label_rows(a$out)), 1)
  expect_equal(label_message(v, key_msg(v, "2", n = 1, image = 2))$why, "counter")  # replayed
  expect_equal(label_message(v, key_msg(v, "2", n = 2, image = 1))$why, "stale")  # pressed on image 1
  expect_equal(v$i, 2)
  expect_equal(nrow(label_rows(a$out)), 1)
  expect_true(label_message(v, key_msg(v, "2"))$ok)
  expect_equal(label_rows(a$out)$path, a$imgs[1:2])
  expect_true(label_message(v, key_msg(v, "Done"))$done)
})

test_that("two tabs each label the image they show", {
  a <- security_app()
  tab1 <- label_view(a$st)
  tab2 <- label_view(a$st)
  expect_equal(c(tab1$i, tab2$i), c(1, 1))
  expect_true(label_message(tab1, key_msg(tab1, "1"))$ok)
  expect_equal(c(tab1$i, tab2$i), c(2, 1))
  expect_true(label_message(tab2, key_msg(tab2, "3"))$ok)  # tab 2 still shows image 1
  rows <- label_rows(a$out)
  expect_equal(rows$path, a$imgs[c(1, 1)])
  expect_equal(rows$label, c("animals", "tools"))
  expect_equal(read_labels(a$out)$label, "tools")
  # A new tab opens at the first image neither has done.
  expect_equal(label_view(a$st)$i, 2)
})

test_that("in the server, a replayed key message writes nothing", {
  a <- security_app()
  shiny::testServer(a$app, {
    view <- session$userData$tv_view
    msg <- key_msg(view, "1")
    session$setInputs(key = msg)
    expect_equal(nrow(label_rows(a$out)), 1)
    session$setInputs(key = msg)
    session$setInputs(key = key_msg(view, "2", image = 1))
    session$setInputs(key = key_msg(view, "2", n = view$n + 2))
    expect_equal(nrow(label_rows(a$out)), 1)
    expect_equal(view$i, 2)
    expect_match(gsub("<wbr>", "", output$side$html, fixed = TRUE), "ignored", fixed = TRUE)
  })
})
