"""ms per MD step of the same model as a TorchScript file and as an AOTInductor package,
side by side, through the C++ core (what LATENT_CV runs), on one thread.

The model: an encoder of the default :class:`latentcv.cv_models.config.ModelConfig` (LJ:
one atom per molecule, random weights, arbitrary distinct centroids; cost does not depend
on weights) or ``--checkpoint``, wrapped as ``latentcv export`` wraps it
(:class:`latentcv.export.module.LatentCVModule`), float64. Frames: the fcc frames of
benchmarks/encoder_cost.py (reduced density 1.0, 0.1 sigma noise). Per format it reports:

- ``export s``: writing the file (scripting, or tracing + compiling three graphs);
- ``load s``: ``Model(path)`` with its warm-up (3 evaluations with gradients);
- ``values ms``: ``evaluate(gradients=False)``;
- ``step ms``: ``evaluate_deferred`` + one ``vector_jacobian`` (the MD-step path: values in
  PLUMED's calculate(), forces in apply()); for the package the values graph runs in the first
  call and the vjp graph (values again + backward) in the second;
- and the plain LAMMPS LJ step at the same atom count (``--md``).

Usage::

    .venv/bin/python benchmarks/aoti_vs_torchscript.py [--sizes 2048] [--checkpoint run/checkpoint.pt] [--md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from encoder_cost import build_encoder, lammps_ms_per_step, lj_frame, timeit  # noqa: E402

from latentcv.cv_models.native import core as native  # noqa: E402
from latentcv.export.deploy import ModelCard, save_deployable  # noqa: E402
from latentcv.export.module import LatentCVModule  # noqa: E402

torch.set_num_threads(1)


def deployable(checkpoint: str) -> LatentCVModule:
    enc = build_encoder(checkpoint, torch.float64)
    if float(enc.has_centroids[0]) != 1.0:
        g = torch.Generator().manual_seed(1)
        enc.set_centroids(
            torch.randn(enc.latent_dim, generator=g, dtype=torch.float64),
            torch.randn(enc.latent_dim, generator=g, dtype=torch.float64),
        )
    return LatentCVModule(enc).eval()


def write(module: LatentCVModule, folder: Path, fmt: str) -> tuple[Path, float]:
    card = ModelCard(
        name="bench",
        length_unit="lj",
        dtype="float64",
        atoms_per_molecule=1,
        cutoff=float(module.cutoff),
        output_names=module.output_names(),
    )
    path = folder / ("model.pt2" if fmt == "aoti" else "model.pt")
    t0 = time.perf_counter()
    save_deployable(module, card, path, fmt)
    return path, time.perf_counter() - t0


def measure(path: Path, n: int) -> dict:
    t0 = time.perf_counter()
    model = native.Model(str(path), device="cpu", threads=1, warmup=True)
    load = time.perf_counter() - t0
    pos, cell = (np.ascontiguousarray(t.numpy(), dtype=np.float64) for t in lj_frame(n))
    k = len(model.output_names)
    w = list(np.linspace(0.5, 1.5, k))

    def step() -> None:
        model.evaluate_deferred(pos, cell)
        model.vector_jacobian(w)

    return {
        "load s": load,
        "values ms": timeit(lambda: model.evaluate(pos, cell, gradients=False)),
        "step ms": timeit(step),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048])
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--md", action="store_true", help="also time the plain LAMMPS LJ step")
    args = parser.parse_args()
    module = deployable(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        files = {fmt: write(module, Path(tmp), fmt) for fmt in ("torchscript", "aoti")}
        for fmt, (_, secs) in files.items():
            print(f"{fmt:12s} export {secs:7.1f} s")
        print(f"{'atoms':>6s} {'format':12s} {'load s':>7s} {'values ms':>10s} {'step ms':>9s}")
        for n in args.sizes:
            for fmt, (path, _) in files.items():
                r = measure(path, n)
                print(f"{n:6d} {fmt:12s} {r['load s']:7.2f} {r['values ms']:10.2f} {r['step ms']:9.2f}")
            if args.md:
                print(f"{n:6d} {'plain MD':12s} {'':7s} {'':10s} {lammps_ms_per_step(n, 200):9.2f}")


if __name__ == "__main__":
    main()
