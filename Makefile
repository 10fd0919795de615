# imrstats developer commands. The first two are the README's: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: demo test test-oldest docs data bench reference lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[io]"
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[test,docs]"
	touch $@ $(STAMP_RUN)

$(STAMP_BENCH): pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[bench]"
	touch $@ $(STAMP_TEST) $(STAMP_RUN)

## demo: load -> validate -> score -> summarise the bundled synthetic trial into out/
demo: $(STAMP_RUN)
	$(PY) -m imrstats report --out out

## test: the whole test suite (no R needed), every notebook in notebooks/ executed top to bottom,
## then the documentation (Sphinx, warnings are errors)
# The notebooks run in a separate Jupyter kernel, which pytest's filterwarnings does not reach:
# PYTHONWARNINGS=error makes any warning a notebook does not handle itself fail the run there too
# (PendingDeprecationWarning is left out: ipykernel raises one in its own shutdown handler).
NB_WARNINGS := error,ignore::PendingDeprecationWarning
test: $(STAMP_TEST)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no tests (exit 5)" >&2; exit 1; fi; exit $$rc
	PYTHONWARNINGS=$(NB_WARNINGS) $(PY) -m pytest --nbmake --nbmake-timeout=60 notebooks; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no notebooks (exit 5)" >&2; exit 1; fi; exit $$rc
	$(MAKE) docs

## docs: the Sphinx site (tutorials = the notebooks, executed; API reference; validation) -> docs/_build/html
docs: $(STAMP_TEST)
	rm -rf docs/_build docs/api/generated docs/jupyter_execute
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

## test-oldest: the test suite again on the oldest supported pandas (2.2), in .venv-oldest
OLD := .venv-oldest/bin/python
test-oldest:
	test -x $(OLD) || $(PYTHON) -m venv .venv-oldest
	$(OLD) -m pip install --quiet --upgrade pip
	$(OLD) -m pip install --quiet "pandas>=2.2,<2.3" -e ".[test]"
	$(OLD) -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest ran no tests (exit 5)" >&2; exit 1; fi; exit $$rc

## data: regenerate data/synthetic/ (and the copy shipped in the package)
data: $(STAMP_RUN)
	$(PY) -m imrstats._make_data

## bench: benchmarks (time and peak memory), written to benchmarks/results/
bench: $(STAMP_BENCH)
	$(PY) benchmarks/run.py $(BENCH)

## reference: regenerate the R reference fixtures (needs R; tests never do)
reference:
	$(MAKE) -C tests/reference

lint: $(STAMP_TEST)
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .venv-oldest out .pytest_cache .ruff_cache docs/_build docs/api/generated docs/jupyter_execute
