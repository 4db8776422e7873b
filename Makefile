# latentcv: `make demo` and `make test` set everything up on first use (a .venv with the
# pinned dependencies, then the C++ parts built against that venv's torch), and later
# reinstall nothing and rebuild only what changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := $(VENV)/.latentcv-stamps
HILLCLIMBER := hillclimber==0.1.8
NATIVE_SOURCES := $(shell find cpp plumed_plugin lammps_plugin -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: demo test build setup benchmark bench-deps clean

demo: build
	$(VENV)/bin/latentcv demo

test: build
	$(VENV)/bin/pytest -q

benchmark: build
	$(PY) benchmarks/chain_overhead.py

build: $(STAMPS)/native

# Optional benchmark dependencies (OVITO, ~200 MB): structure types in `latentcv compare`.
bench-deps: $(STAMPS)/bench-deps

$(STAMPS)/bench-deps: requirements-bench.txt $(STAMPS)/deps
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	@touch $@

setup: $(STAMPS)/deps

# Dependencies. hillclimber bundles the PLUMED kernel; its own dependencies are >1 GB
# and unneeded, hence --no-deps (docs/install.md).
$(STAMPS)/deps: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps $(HILLCLIMBER)
	@mkdir -p $(STAMPS) && touch $@

# C++ core, pybind11 module, PLUMED action and LAMMPS plugin, built by scikit-build-core
# against the venv's torch (no build isolation: same libtorch ABI). Incremental: the
# CMake build folder is build/<wheel tag>. Python sources are installed editable.
$(STAMPS)/native: $(STAMPS)/deps $(NATIVE_SOURCES)
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	@touch $@

clean:
	rm -rf build $(STAMPS)
