# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,images]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/structax demo --out report/

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --doctest-modules structax tests

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_gam.py
	$(PY) benchmarks/bench_transform.py
	$(PY) benchmarks/bench_sciml_phase.py

clean:
	rm -rf $(VENV) report
