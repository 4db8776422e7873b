#!/usr/bin/env bash
# Build latentcv's C++ core against a CUDA libtorch and run it once (on the CPU when no GPU
# is visible): the check that the CUDA build compiles and links without a GPU machine.
#
#   bash tools/cuda_check.sh [WORKDIR]      # default /tmp/latentcv-cuda-check; ~5 min, ~6 GB
#
# Makes its own venv with the CUDA torch wheel (torch==2.14.1+cu130 on this project's
# machines), configures cpp/ with the CUDA toolkit in /usr/local/cuda, builds, then loads a
# model exported by this checkout's `make build` through the built core.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-/tmp/latentcv-cuda-check}"
CUDA="${CUDA_HOME:-/usr/local/cuda}"
mkdir -p "$WORK"
test -x "$WORK/venv/bin/python" || python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check torch==2.14.1 pybind11 numpy
V="$WORK/venv/bin/python"
TP=$("$V" -c "import torch; print(torch.utils.cmake_prefix_path)")
PB=$("$V" -c "import pybind11; print(pybind11.get_cmake_dir())")
NVRTC=$("$V" -c "import glob, os, torch; print((glob.glob(os.path.join(os.path.dirname(torch.__file__), '..', 'nvidia', '*', 'lib', 'libnvrtc.so*')) or [''])[0])")
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # no GPU to detect the architecture from
PATH="$CUDA/bin:$PATH" cmake -S "$ROOT/tools/cuda_check" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TP;$PB" -DPYTHON_EXECUTABLE="$V" -DPython3_EXECUTABLE="$V" \
  -DCUDA_TOOLKIT_ROOT_DIR="$CUDA" -DCMAKE_CUDA_STANDARD=17 ${NVRTC:+-DCUDA_nvrtc_LIBRARY="$NVRTC"}
PATH="$CUDA/bin:$PATH" cmake --build "$WORK/build" -j "$(nproc)"
readelf -d "$WORK/build/cpp/"_core*.so | grep -q libtorch_cuda.so && echo "cuda_check: _core links libtorch_cuda.so"
MODEL="$WORK/coordination.pt"
"$ROOT/.venv/bin/python" -c "from latentcv.export.analytic import save_coordination_model as s; s('$MODEL', atoms_per_molecule=1, cutoff=1.5, length_unit='lj')"
"$V" "$ROOT/tools/cuda_check_run.py" "$MODEL" "$WORK/build/cpp"
