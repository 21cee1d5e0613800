# Every error a user can meet is classed `tidyvision_error_<kind>` and
# `tidyvision_error`; every warning `tidyvision_warning_<kind>`.
tv_abort <- function(message, class = NULL, ..., call = caller_env(),
                     .envir = parent.frame()) {
  cli::cli_abort(
    message,
    class = c(if (!is.null(class)) paste0("tidyvision_error_", class), "tidyvision_error"),
    ...,
    call = call,
    .envir = .envir
  )
}

tv_warn <- function(message, class = NULL, ..., .envir = parent.frame()) {
  cli::cli_warn(
    message,
    class = c(if (!is.null(class)) paste0("tidyvision_warning_", class), "tidyvision_warning"),
    ...,
    .envir = .envir
  )
}

# A bullet list of at most `n` items, with a count of the rest.
bullets_of <- function(x, n = 5) {
  shown <- cli_escape(utils::head(x, n))
  out <- rlang::set_names(as.character(shown), rep("*", length(shown)))
  if (length(x) > n) out <- c(out, " " = paste0("... and ", length(x) - n, " more."))
  out
}

cli_escape <- function(x) gsub("}", "}}", gsub("{", "{{", x, fixed = TRUE), fixed = TRUE)

# print() of the objects users hold: a titled rule, then format()'s lines.
print_titled <- function(x, title) {
  cat(format(cli::rule(left = title)), "\n", sep = "")
  cat(format(x), sep = "\n")
  invisible(x)
}
