#!/usr/bin/env bash
# The wheel works without the checkout: build it, install it into a fresh venv, and from an
# empty folder run what reads the embedded systems (examples/, shipped as latentcv/examples):
# `generate`, a short `demo` (train, export, metadynamics) and a short `compare`.
#
#   bash tools/wheel_check.sh [WORKDIR]     # after `make build`; ~15 min on 2 cores
#
# Run by .ci/run after `make test`. Builds in its own folder (WORKDIR/build), so the
# editable install's build/ is left alone.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d /tmp/latentcv-wheel-check.XXXXXX)}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
step() { echo "wheel_check: $*"; }

step "building the wheel in $WORK/build"
"$ROOT/.venv/bin/python" -m pip wheel "$ROOT" --no-build-isolation --no-deps -q -w "$WORK/dist" \
  -C build-dir="$WORK/build"
WHEEL="$(ls "$WORK"/dist/latentcv-*.whl)"

step "installing $(basename "$WHEEL") into a fresh venv"
rm -rf "$WORK/venv"
python3 -m venv "$WORK/venv"
PIP=("$WORK/venv/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" -r "$ROOT/requirements.txt"
"${PIP[@]}" --no-deps hillclimber==0.1.8 "$WHEEL"

RUN="$WORK/run"
rm -rf "$RUN" && mkdir -p "$RUN" && cd "$RUN"    # no checkout in sight
export PATH="$WORK/venv/bin:$PATH"
python - <<'PY'
import latentcv.cv_models.systems as systems
assert "site-packages" in systems.__file__, f"latentcv imported from {systems.__file__}, not the wheel"
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
