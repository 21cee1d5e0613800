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

# A number as itself, anything else by its type.
shown_value <- function(x) {
  if (is.numeric(x) && length(x) == 1 && !is.na(x)) format(x) else cli::format_inline("{.obj_type_friendly {x}}")
}

# One numeric argument, checked by `ok`; `must` says what it must be.
check_scalar <- function(x, ok, must, arg, call) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || !isTRUE(ok(x))) {
    tv_abort("{.arg {arg}} must be {must}, not {shown_value(x)}.", class = "bad_argument", call = call)
  }
}
