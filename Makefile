# make demo: install what is missing, then run the main job on DATA and write the report.
# make test: install what is missing, then pytest, testthat and R CMD check.
# make fresh-check: make demo twice in a clean clone with a brand-new virtualenv root.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

DATA ?= inst/extdata/images
REPORT_DIR ?= report
ENVNAME ?= r-tidyvision
VENV_ROOT := $(or $(RETICULATE_VIRTUALENV_ROOT),$(WORKON_HOME),$(HOME)/.virtualenvs)
PYTHON := $(or $(RETICULATE_PYTHON),$(VENV_ROOT)/$(ENVNAME)/bin/python)
OUT := .tidyvision-check
DEBIAN_DEPS := r-base-core r-cran-reticulate r-cran-tibble r-cran-cli r-cran-rlang \
  r-cran-vctrs r-cran-ggplot2 r-cran-generics r-cran-jsonlite r-cran-withr r-cran-dplyr \
  r-cran-testthat r-cran-knitr r-cran-rmarkdown r-cran-roxygen2 r-cran-callr r-cran-processx \
  r-cran-patchwork r-cran-png r-cran-jpeg r-cran-ggrepel r-cran-dbi r-cran-rsqlite \
  r-cran-future r-cran-future.batchtools r-cran-batchtools r-cran-shiny r-cran-miniui \
  r-cran-uwot r-cran-haven slurm-wlm munge chromium pandoc python3-venv
export TIDYVISION_ENV := $(ENVNAME)

.PHONY: demo test fresh-check system-deps install python-env pytest testthat check docs

system-deps:
	@missing=$$(for p in $(DEBIAN_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)
	if [ -n "$$missing" ]; then
	  if [ "$$(id -u)" = 0 ]; then
	    apt-get update -qq
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing
	  else
	    echo "Missing Debian packages: $$missing. Run: sudo apt-get install $$missing"; exit 1
	  fi
	fi

# The package is reinstalled only when its sources changed.
STAMP := .tidyvision-install.stamp
SOURCES := DESCRIPTION NAMESPACE $(shell find R inst man -type f ! -name '* *' ! -path '*__pycache__*' 2>/dev/null)
install: system-deps $(STAMP)
$(STAMP): $(SOURCES)
	@R CMD INSTALL --no-test-load . >/dev/null 2>$(STAMP).log || { cat $(STAMP).log; exit 1; }
	touch $(STAMP)

python-env: install
	@Rscript -e 'tidyvision::install_tidyvision("$(ENVNAME)", quiet = TRUE)'

docs:
	@Rscript -e 'roxygen2::roxygenise()'

demo: python-env
	@Rscript -e 'tidyvision:::render_report("$(DATA)", "$(REPORT_DIR)")'

# The CPU is a test axis: the engine's suite runs again, and the R tests of
# training, prediction, explanations and the corpus once, as on a laptop
# without AVX-512 or bf16 (torch then reports AVX2 and no oneDNN bf16).
AVX2 := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
AVX2_R_TESTS := ^(fine_tune|classifier|explain|corpus)$$
pytest:
	@mkdir -p $(OUT)
	cd tests/python
	"$(PYTHON)" -m pytest -q -p no:cacheprovider --junitxml=../../$(OUT)/pytest.xml . || true
	echo "pytest again under the AVX2 emulation ($(AVX2))"
	env $(AVX2) "$(PYTHON)" -m pytest -q -p no:cacheprovider --junitxml=../../$(OUT)/pytest-avx2.xml . || true

# The corpus tests run on a real one-node SLURM cluster (tools/slurm.sh). It is
# started here unless one is already up, and then stopped again, by PID file.
SLURM_DIR := $(or $(TIDYVISION_SLURM_DIR),/tmp/tidyvision-slurm)
testthat:
	@mkdir -p $(OUT)
	started=0
	case "$$(tools/slurm.sh status 2>/dev/null || true)" in
	  *"slurmctld: running"*) ;;
	  *) tools/slurm.sh start >/dev/null && started=1 ;;
	esac
	trap 'if [ $$started = 1 ]; then tools/slurm.sh stop; fi' EXIT
	export SLURM_CONF=$(SLURM_DIR)/slurm.conf USER=$${USER:-$$(id -un)}
	TIDYVISION_REQUIRE_PYTHON=1 Rscript tools/testthat.R $(OUT)/testthat.txt
	echo "testthat again for '$(AVX2_R_TESTS)' under the AVX2 emulation"
	env $(AVX2) TIDYVISION_REQUIRE_PYTHON=1 Rscript tools/testthat.R $(OUT)/testthat-avx2.txt '$(AVX2_R_TESTS)'

check:
	@mkdir -p $(OUT)
	rm -f tidyvision_*.tar.gz
	R CMD build . >$(OUT)/build.log 2>&1 || { cat $(OUT)/build.log; exit 1; }
	_R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual --no-tests --ignore-vignettes -o $(OUT) tidyvision_*.tar.gz \
	  2>&1 | tee $(OUT)/check.log | grep -E '^(Status|\* checking.*(ERROR|WARNING|NOTE))' || true

test: python-env
	@rm -rf $(OUT)
	$(MAKE) --no-print-directory pytest
	$(MAKE) --no-print-directory testthat
	$(MAKE) --no-print-directory check
	"$(PYTHON)" tools/summary.py $(OUT)

# A new user's path: a clean clone of HEAD, its own R library and a brand-new
# virtualenv root, `make demo` twice. The first must write the report; the
# second must install nothing. Everything is deleted afterwards (~5.5 GB).
fresh-check:
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/tidyvision-fresh.XXXXXX")
	trap 'rm -rf "$$tmp"' EXIT
	git clone -q . "$$tmp/tidyvision"
	mkdir -p "$$tmp/venvs" "$$tmp/rlib"
	export RETICULATE_VIRTUALENV_ROOT="$$tmp/venvs" WORKON_HOME="$$tmp/venvs" R_LIBS="$$tmp/rlib"
	unset RETICULATE_PYTHON
	cd "$$tmp/tidyvision"
	echo "fresh-check: make demo in $$tmp (python3 on PATH: $$(command -v python3))"
	$(MAKE) --no-print-directory demo 2>&1 | tee "$$tmp/first.log"
	test -s report/tidyvision-report.html || { echo "fresh-check: FAILED, the first make demo wrote no report"; exit 1; }
	$(MAKE) --no-print-directory demo 2>&1 | tee "$$tmp/second.log"
	if grep -q "Installing" "$$tmp/second.log" || ! grep -q "up to date" "$$tmp/second.log"; then
	  echo "fresh-check: FAILED, the second make demo installed again"; exit 1
	fi
	echo "fresh-check: passed (a fresh clone and virtualenv root ran make demo; the second run installed nothing)"
