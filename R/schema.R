# The columns of each table the engine returns, declared once, as in
# DESIGN.md; as_schema() types them on the way in and checks nothing is
# missing, so a verb never retypes its columns.
SCHEMAS <- list(
  images = c(path = "chr", label = "chr", split = "chr", file_size = "dbl", width = "int",
             height = "int", format = "chr", readable = "lgl", problem = "chr"),
  skipped_files = c(path = "chr", kind = "chr", extension = "chr"),
  duplicates = c(group = "int", is_first = "lgl", distance = "int"),
  duplicates_embedding = c(group = "int", is_first = "lgl", distance = "dbl"),
  history = c(epoch = "int", split = "chr", loss = "dbl", accuracy = "dbl", precision = "dbl",
              recall = "dbl", f1 = "dbl", learning_rate = "dbl", seconds = "dbl"),
  detections = c(path = "chr", object = "int", class = "chr", confidence = "dbl",
                 xmin = "dbl", ymin = "dbl", xmax = "dbl", ymax = "dbl",
                 image_width = "int", image_height = "int"),
  faces = c(path = "chr", face = "int", confidence = "dbl", xmin = "dbl", ymin = "dbl",
            xmax = "dbl", ymax = "dbl", image_width = "int", image_height = "int",
            score = "dbl", problem = "chr"),
  tags = c(path = "chr", tag = "chr", confidence = "dbl", source = "chr"),
  corpus_tags = c(path = "chr", tag = "chr", confidence = "dbl", source = "chr", problem = "chr"),
  corpus_detections = c(path = "chr", object = "int", class = "chr", confidence = "dbl",
                        xmin = "dbl", ymin = "dbl", xmax = "dbl", ymax = "dbl",
                        image_width = "int", image_height = "int", problem = "chr"),
  cache = c(space = "chr", entries = "int", bytes = "dbl"),
  agreement = c(.metric = "chr", .estimate = "dbl", .lower = "dbl", .upper = "dbl", n_units = "int",
                n_coders = "int", coders = "chr")
)

# `cols` (columns from the engine) as the tibble of `schema`. A missing
# column is a bug in the engine, not in the user's input.
as_schema <- function(cols, schema, call = caller_env()) {
  spec <- SCHEMAS[[schema]]
  missing <- setdiff(names(spec), names(cols))
  if (length(missing)) {
    tv_abort(c("The engine returned no {.field {missing}} column for {.cls {schema}}.",
               i = "This is a bug in tidyvision; please report it."), class = "engine", call = call)
  }
  tibble::as_tibble(Map(col_of, cols[names(spec)], spec))
}
