# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
# The demo: VesselMNIST3D, whose critical class (aneurysm) is 11% of every split, at a quarter width.
DEMO_ARGS ?= --dataset vesselmnist3d --method alm --epochs 3 --width 0.25

.PHONY: install install-dev demo test

install:
	$(PYTHON) -m pip install -e .

install-dev:
	$(PYTHON) -m pip install -e ".[dev]"

demo: install
	$(PYTHON) -m benchmarks.run $(DEMO_ARGS)

test: install-dev
	$(PYTHON) -m pytest -q
