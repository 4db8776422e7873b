# latentcv: `make demo` and `make test` set everything up on first use (a .venv with the
# pinned dependencies, then the C++ parts built against that venv's torch), and later
# reinstall nothing and rebuild only what changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMPS := $(VENV)/.latentcv-stamps
HILLCLIMBER := hillclimber==0.1.8
NATIVE_SOURCES := $(shell find cpp plumed_plugin lammps_plugin -type f 2>/dev/null) CMakeLists.txt pyproject.toml

.PHONY: demo test build setup benchmark bench-deps clean plumed-opt

demo: build
	$(VENV)/bin/latentcv demo

test: build
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
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

# The editable install maps each Python module to its file: a module added, moved or removed
# needs a reinstall. $(PY_LAYOUT) lists them and changes only when that list does.
PY_LAYOUT := $(STAMPS)/python-layout
.PHONY: FORCE
$(PY_LAYOUT): FORCE | $(STAMPS)/deps
	@find cv_models export -name '*.py' | LC_ALL=C sort > $@.new
	@cmp -s $@.new $@ || mv $@.new $@
	@rm -f $@.new

# C++ core, pybind11 module, PLUMED action and LAMMPS plugin, built by scikit-build-core
# against the venv's torch (no build isolation: same libtorch ABI). Incremental: the
# CMake build folder is build/<wheel tag>. Python sources are installed editable.
$(STAMPS)/native: $(STAMPS)/deps $(NATIVE_SOURCES) $(PY_LAYOUT)
	$(PY) -m pip install --disable-pip-version-check -q --no-build-isolation --no-deps -e .
	@touch $@

# Optional (10 min on 2 idle cores, ~50 on a loaded machine; never a dependency of demo/test): the same PLUMED as the
# bundled kernel, rebuilt with -O3 (and MPI from the mpich wheel) into $(PLUMED_OPT).
# Progress on the terminal, full log in $(PLUMED_OPT).build.log. docs/install.md.
PLUMED_OPT := $(VENV)/opt/plumed-O3
PLUMED_OPT_JOBS ?= 2
HILLCLIMBER_SDIST ?=
plumed-opt: $(STAMPS)/plumed-opt

$(STAMPS)/plumed-opt: | $(STAMPS)/deps
	$(PY) tools/build_plumed_opt.py --prefix $(PLUMED_OPT) --jobs $(PLUMED_OPT_JOBS) \
		$(if $(HILLCLIMBER_SDIST),--sdist $(HILLCLIMBER_SDIST))
	@touch $@

# keeps the optional plumed-opt build (and its stamp): it takes 10-50 min to redo
clean:
	rm -rf build
	@test ! -d $(STAMPS) || find $(STAMPS) -mindepth 1 ! -name plumed-opt -delete
