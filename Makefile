# quantlab: the commands a newcomer needs.
#   make app    set up .venv and run the app on live Binance
#   make demo   the same on the built-in exchange simulator (offline)
#   make test   set up .venv with the test extras and run the whole suite (newest pandas), then
#               the pandas-touching unit tests on the oldest supported pandas (.venv-oldest)
#   make bench  benchmarks, one table with reference ratios
#   make lint   ruff, then the type checker (mypy, configured in pyproject.toml) on quantlab/
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS   ?=
# the oldest supported pandas line, and the unit tests that parse, resample and compare with
# pandas: they run there too (make test-oldest; make test runs it after the suite when ARGS is empty;
# the one deselected store test times a second process's start, which says nothing about pandas)
OLDEST_VENV   ?= .venv-oldest
OLDEST_PANDAS ?= pandas==2.2.*
OLDEST_STAMP  := $(OLDEST_VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
OLDEST_TESTS  := tests/test_pandas_lines.py tests/test_import.py tests/test_store.py \
                 tests/test_cli_store.py tests/test_screen_api.py tests/test_screen_core.py \
                 tests/test_analytics_realdata.py tests/test_analytics_badinput.py \
                 tests/test_backtest_metrics.py tests/test_backtest_realdata.py \
                 tests/test_alerts_engine.py tests/test_sim_sources.py

.PHONY: app demo test test-oldest bench lint venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# the benchmarks' anchors (vectorbt, pyarrow, polars, duckdb) only where benchmarks run
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@rm -f $(VENV)/.bench-*
	@touch $(BENCH_STAMP)

venv: $(STAMP)

app: $(STAMP)
	$(VENV)/bin/quantlab app $(ARGS)

demo: $(STAMP)
	$(VENV)/bin/quantlab app --demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)
ifeq ($(strip $(ARGS)),)
	@$(MAKE) --no-print-directory test-oldest
endif

$(OLDEST_STAMP): pyproject.toml
	@test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet --no-compile -e '.[test]' '$(OLDEST_PANDAS)'
	@rm -f $(OLDEST_VENV)/.installed-*
	@touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	@$(OLDEST_VENV)/bin/python -c "import pandas; print('oldest supported pandas:', pandas.__version__)"
	$(OLDEST_VENV)/bin/python -m pytest -m "not live and not browser and not slow" $(OLDEST_TESTS) \
	  --deselect tests/test_store.py::test_reader_process_sees_rows_while_writer_appends

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check quantlab tests benchmarks
	$(PY) -m mypy

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
