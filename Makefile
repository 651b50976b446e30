# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
DEMO_ARGS ?= --dataset pneumoniamnist --method alm --epochs 3

.PHONY: install install-dev demo test

install:
	$(PYTHON) -m pip install -e .

install-dev:
	$(PYTHON) -m pip install -e ".[dev]"

demo: install
	$(PYTHON) -m benchmarks.run $(DEMO_ARGS)

test: install-dev
	$(PYTHON) -m pytest -q
