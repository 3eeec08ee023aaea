# quantlab: the commands a newcomer needs.
#   make app    set up .venv and run the app on live Binance
#   make demo   the same on the built-in exchange simulator (offline)
#   make test   set up .venv with the test extras and run the whole suite
#   make bench  benchmarks, one table with reference ratios
#   make lint   ruff
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
ARGS   ?=

.PHONY: app demo test bench lint venv clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

app: $(STAMP)
	$(VENV)/bin/quantlab app $(ARGS)

demo: $(STAMP)
	$(VENV)/bin/quantlab app --demo $(ARGS)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check quantlab tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
