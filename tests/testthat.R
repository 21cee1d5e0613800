library(testthat)
library(tidyvision)

test_check("tidyvision")
