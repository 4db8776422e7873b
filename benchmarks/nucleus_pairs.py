"""Two equal nuclei against one of double size (issue 21, item 2): does ``n_nucleus`` read
the largest crystalline cluster, or the crystalline mass summed over every nucleus?

In frames of an LJ melt of 2 048 atoms at the state point (T = 0.58, P = 1; the melt run of
``benchmarks/nucleus_sizes.py``, reused when it is there), spherical fcc nuclei of n
molecules (the n lattice sites nearest the centre, crystal density 0.98, Gaussian jitter
per coordinate, not relaxed) replace the melt around them: (a) one nucleus of n, (b) two
of n with centres half a box apart along the diagonal, (c) one of 2n. Every frame is read
by the model and by freud (largest ten Wolde cluster, total solid count), and the script
prints a markdown table, mean ± std over ``--frames`` melt frames, then the ratios.

    .venv/bin/python benchmarks/nucleus_pairs.py --checkpoint demo_out/train/checkpoint.pt \\
        [--sizes 40 80 160 320] [--frames 6] [--out /tmp/nucleus_sizes]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from nucleus_shape import outputs  # benchmarks/nucleus_shape.py
from scipy.spatial import cKDTree

from latentcv.cv_models.analysis.crystallinity import freud_largest_cluster, freud_solid
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.synthetic import fcc_positions

CASES = ("one of n", "two of n", "one of 2n")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 80, 160, 320], help="n, molecules per nucleus")
    ap.add_argument("--frames", type=int, default=6, help="melt frames per case (spread over the melt run)")
    ap.add_argument("--cells", type=int, default=8, help="fcc cells per edge of the melt box (4 n^3 atoms)")
    ap.add_argument("--density", type=float, default=0.98, help="number density of the nuclei's lattice")
    ap.add_argument("--jitter", type=float, default=0.05, help="Gaussian displacement of nucleus sites (σ)")
    ap.add_argument("--clear", type=float, default=0.9, help="melt atoms closer than this to a site are removed")
    ap.add_argument("--cutoff", type=float, default=1.5, help="ten Wolde cutoff (σ)")
    ap.add_argument("--out", default="/tmp/nucleus_sizes", help="where the melt run is (or is made)")
    return ap.parse_args()


def melt_frames(a: argparse.Namespace) -> list[Frame]:
    """``--frames`` frames spread over the melt run that ``nucleus_sizes.py`` makes."""
    melt = GeneratorConfig(
        system="lj", n_cells=a.cells, phases=("melt",), equil_steps=1000, prod_steps=2000, dump_every=200
    )
    frames = list(generate(melt, Path(a.out) / f"cells{a.cells}" / "melt", reuse=True))
    pick = np.linspace(0, len(frames) - 1, min(a.frames, len(frames))).round().astype(int)
    return [frames[k] for k in pick]


def nucleus_sites(n: int, centre: np.ndarray, density: float) -> np.ndarray:
    """The n sites of an fcc lattice (one site on ``centre``) nearest to ``centre``: a
    compact sphere of exactly n molecules."""
    a = (4.0 / density) ** (1.0 / 3.0)
    k = int(np.ceil((3.0 * n / (4.0 * np.pi * density)) ** (1.0 / 3.0) / a)) + 2
    sites, _ = fcc_positions(2 * k, a)
    sites = sites - k * a  # a site on the origin, the block centred on it
    order = np.argsort(np.linalg.norm(sites, axis=1), kind="stable")
    return sites[order[:n]] + centre


def seeded(frame: Frame, nuclei: list[np.ndarray], a: argparse.Namespace, rng: np.random.Generator) -> Frame:
    """The melt frame with the melt atoms inside or next to each nucleus replaced by it
    (orthorhombic box; one atom per molecule, as in the LJ system)."""
    box = np.diag(frame.cell)
    melt = np.mod(frame.positions, box)
    keep = np.ones(len(melt), dtype=bool)
    for sites in nuclei:
        centre = sites[0]  # the first site is the centre
        d = melt - centre
        d -= box * np.round(d / box)
        keep &= np.linalg.norm(d, axis=1) > np.linalg.norm(sites - centre, axis=1).max()
        near = cKDTree(np.mod(sites, box), boxsize=box).query_ball_point(melt, a.clear)
        keep &= np.array([len(x) == 0 for x in near])
    crystal = [np.mod(s + rng.normal(0.0, a.jitter, s.shape), box) for s in nuclei]
    positions = np.concatenate([melt[keep], *crystal])
    m = len(positions)
    return dataclasses.replace(
        frame,
        positions=positions,
        molecule=np.arange(m),
        species=np.zeros(m, dtype=frame.species.dtype),
        molecule_labels=None,
    )


def case_frames(melts: list[Frame], n: int, case: str, a: argparse.Namespace) -> list[Frame]:
    """The frames of one case: nuclei at L/4 (and 3L/4) along the box diagonal."""
    out = []
    for k, frame in enumerate(melts):
        rng = np.random.default_rng(1000 * n + k)
        c1 = np.diag(frame.cell) / 4
        if case == "one of n":
            nuclei = [nucleus_sites(n, c1, a.density)]
        elif case == "two of n":
            nuclei = [nucleus_sites(n, c1, a.density), nucleus_sites(n, 3 * c1, a.density)]
        else:
            nuclei = [nucleus_sites(2 * n, c1, a.density)]
        out.append(seeded(frame, nuclei, a, rng))
    return out


def readings(encoder, frames: list[Frame], cutoff: float) -> dict[str, np.ndarray]:
    """freud's largest cluster and solid total, and the model's outputs, per frame."""
    nn_, nc, nl = outputs(encoder, frames)
    return {
        "largest": np.array([freud_largest_cluster(f, cutoff) for f in frames], dtype=float),
        "solid": np.array([freud_solid(f, cutoff).sum() for f in frames], dtype=float),
        "n_nucleus": nn_,
        "n_largest": nl,
        "n_crystal": nc,
    }


def pm(x: np.ndarray, digits: int = 1) -> str:
    return f"{x.mean():.{digits}f} ± {x.std():.{digits}f}"


def main() -> None:
    a = parse_args()
    encoder = load_encoder(a.checkpoint).double()
    melts = melt_frames(a)
    print(f"{len(melts)} melt frames of {melts[0].n_atoms} atoms; nuclei not relaxed, jitter {a.jitter} σ\n")
    print("| n | case | freud largest cluster | freud solid total | n_nucleus | n_largest | n_crystal |")
    print("|---|---|---|---|---|---|---|")
    r = readings(encoder, melts, a.cutoff)
    row = " | ".join(pm(r[k]) for k in ("largest", "solid", "n_nucleus", "n_largest", "n_crystal"))
    print(f"| 0 | melt | {row} |")
    ratios = []
    for n in a.sizes:
        r = {case: readings(encoder, case_frames(melts, n, case, a), a.cutoff) for case in CASES}
        for case in CASES:
            x = r[case]
            row = " | ".join(pm(x[k]) for k in ("largest", "solid", "n_nucleus", "n_largest", "n_crystal"))
            print(f"| {n} | {case} | {row} |", flush=True)
        ratios.append((n, r))
    keys = ("n_nucleus", "n_largest", "largest")
    names = {"n_nucleus": "n_nucleus", "n_largest": "n_largest", "largest": "freud largest"}
    head = " | ".join(f"{names[k]} two/one of n | {names[k]} two of n/one of 2n" for k in keys)
    print(f"\n| n | {head} |")
    print("|---" * (1 + 2 * len(keys)) + "|")
    for n, r in ratios:
        q = [
            (r["two of n"][k].mean() / r["one of n"][k].mean(), r["two of n"][k].mean() / r["one of 2n"][k].mean())
            for k in keys
        ]
        print(f"| {n} | " + " | ".join(f"{one:.2f} | {double:.2f}" for one, double in q) + " |")


if __name__ == "__main__":
    main()
