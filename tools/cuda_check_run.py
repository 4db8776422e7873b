"""The last step of ``tools/cuda_check.sh``: load a model file through a built ``_core``
module and evaluate it once, on the GPU when torch sees one, else on the CPU.

    python tools/cuda_check_run.py MODEL CORE_DIR

``CORE_DIR`` holds the ``_core*.so`` to check (the CUDA build's ``build/cpp``, or this
checkout's ``latentcv/cv_models/_lib`` for the CPU path that ``tests/test_tools.py`` runs).
Prints one line with the device, the outputs and the largest gradient; exits non-zero on
any failure.
"""

from __future__ import annotations

import sys

import numpy as np
import torch


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, core_dir = argv[1], argv[2]
    sys.path.insert(0, core_dir)
    import _core  # the module built in core_dir, not an installed one

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _core.Model(model_path, device=device)
    positions = np.random.default_rng(0).uniform(0, 6, (64, 3))
    values, grad_positions, _ = model.evaluate(positions, np.eye(3) * 6)
    print(
        f"cuda_check: torch {torch.__version__}, core {_core.__file__}, ran on {model.device}: "
        f"outputs {np.round(values, 6)}, |grad| {np.abs(grad_positions).max():.3g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
