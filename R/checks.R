# Argument checks shared by the verbs. Each raises
# `tidyvision_error_bad_argument`, names the argument and shows the bad value,
# with the user's call (`call`) passed through from the verb.

# A number or a string as itself, anything else by its type.
shown_value <- function(x) {
  if (is.numeric(x) && length(x) == 1 && !is.na(x)) return(format(x))
  if (is.character(x) && length(x) == 1 && !is.na(x)) return(encodeString(x, quote = "\""))
  cli::format_inline("{.obj_type_friendly {x}}")
}

# One numeric argument, checked by `ok`; `must` says what it must be.
check_scalar <- function(x, ok, must, arg, call) {
  if (!is.numeric(x) || length(x) != 1 || is.na(x) || !isTRUE(ok(x))) {
    tv_abort("{.arg {arg}} must be {must}, not {shown_value(x)}.", class = "bad_argument", call = call)
  }
}

# One of `choices` (by default the choices in the calling function's
# default for the argument, as rlang::arg_match() does); returns it.
check_choice <- function(x, choices = NULL, arg = rlang::caller_arg(x), call = caller_env()) {
  choices <- choices %||% eval(formals(sys.function(sys.parent()))[[arg]], envir = call)
  if (identical(x, choices)) return(choices[[1]])
  if (is.character(x) && length(x) == 1 && !is.na(x) && x %in% choices) return(x)
  near <- if (is.character(x) && length(x) == 1 && !is.na(x)) choices[utils::adist(x, choices) <= 2]
  tv_abort(c("{.arg {arg}} must be one of {.or {.val {choices}}}, not {shown_value(x)}.",
             i = if (length(near)) "Did you mean {.val {near[[1]]}}?"),
           class = "bad_argument", call = call)
}

check_seed <- function(seed, call = caller_env()) {
  check_scalar(seed, function(v) v == round(v), "a whole number", "seed", call)
}

check_flag <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!rlang::is_bool(x)) {
    tv_abort("{.arg {arg}} must be TRUE or FALSE, not {.obj_type_friendly {x}}.",
             class = "bad_argument", call = call)
  }
}

check_conf_level <- function(x, call = caller_env()) {
  check_scalar(x, function(v) v > 0 && v < 1, "a number between 0 and 1, such as 0.95", "conf_level", call)
}

check_times <- function(x, call) {
  check_scalar(x, function(v) v >= 0 && v == round(v),
               "a whole number of resamples (0 for no intervals)", "times", call)
}

# Like rlang::check_dots_empty(), but classed and listing the valid
# arguments: a misspelt argument must not be a bare "unused argument" error.
check_dots_known <- function(dots, valid, fn, call = caller_env()) {
  if (length(dots) == 0) return(invisible())
  nms <- rlang::names2(dots)
  shown <- ifelse(nzchar(nms), nms, vapply(dots, rlang::as_label, ""))
  tv_abort(c("{.fn {fn}} has no argument{?s} {.arg {shown}}.",
             i = "Its arguments are {.arg {valid}}."), class = "bad_argument", call = call)
}

check_count <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 1 && v == round(v), "a whole number >= 1", arg, call)
}

check_number <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 0, "a number >= 0", arg, call)
}

check_probability <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 0 && v <= 1, "a number between 0 and 1", arg, call)
}

check_confidence <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 0 && v < 1, "a number from 0 to below 1", arg, call)
}

check_whole <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  check_scalar(x, function(v) v >= 0 && v == round(v), "a whole number >= 0", arg, call)
}

check_threshold <- function(x, call = caller_env()) {
  check_scalar(x, function(v) v > 0, "a distance > 0", "threshold", call)
}

# The default method of a generic: `x` is something the verb can't use, and
# the error says what `arg` takes instead of R's "no applicable method".
abort_no_method <- function(x, fn, takes, arg = "x", call = caller_env()) {
  tv_abort(c("{.fn {fn}} can't use {.arg {arg}}: it must be {takes}, not {.obj_type_friendly {x}}."),
           class = "bad_argument", call = call)
}

# Generics of other packages that tidyvision exports (autoplot, augment,
# explain) answer plain R values with that error too; methods are added for
# base types and data frames only, which none of those generics' packages
# define, so no method of theirs is displaced.
BASE_TYPES <- c("NULL", "logical", "numeric", "character", "list")
FOREIGN_TAKES <- list(
  "ggplot2::autoplot" = list(arg = "object", types = c(BASE_TYPES, "data.frame"),
    takes = "a tidyvision result: a classifier, or the output of {.fn confusion}, {.fn tune_grid}, {.fn learning_curve}, {.fn tag_curve}, {.fn validate_tags}, {.fn plan_coding} or {.fn estimate_prevalence}"),
  "generics::augment" = list(arg = "x", types = c(BASE_TYPES, "data.frame"),
    takes = "a classifier from {.fn fine_tune} or identities from {.fn fit_identities}"),
  "generics::explain" = list(arg = "x", types = c(BASE_TYPES, "data.frame"),
    takes = "a classifier from {.fn fine_tune} or {.fn load_classifier}")
)

register_base_methods <- function() {
  for (generic in names(FOREIGN_TAKES)) {
    spec <- FOREIGN_TAKES[[generic]]
    fn <- sub("^.*::", "", generic)
    method <- no_method(fn, spec$takes, spec$arg)
    for (type in spec$types) vctrs::s3_register(generic, type, method)
  }
}

no_method <- function(fn, takes, arg) {
  force(fn); force(takes); force(arg)
  # `..1`: the object, whether it came by position or by the generic's name for it
  function(...) abort_no_method(..1, fn, cli::format_inline(takes), arg = arg, call = rlang::caller_env(0))
}

# The plots' optional layout arguments: NULL (choose for me) or a whole number.
check_optional_count <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!is.null(x)) check_count(x, arg, call)
}

check_caption <- function(x, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!is.null(x) && !(is.character(x) && length(x) >= 1 && !anyNA(x))) {
    tv_abort("{.arg {arg}} must be text (a string) or NULL, not {shown_value(x)}.",
             class = "bad_argument", call = call)
  }
}

# One non-empty string; `what` says what it names.
check_string <- function(x, what, arg = rlang::caller_arg(x), call = caller_env()) {
  if (!rlang::is_string(x) || is.na(x) || !nzchar(x)) {
    tv_abort("{.arg {arg}} must be {what} (a string), not {shown_value(x)}.",
             class = "bad_argument", call = call)
  }
}
