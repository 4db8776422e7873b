"""Per-molecule crystal labels: the melt's false positives and the crystal's true positives.

For each system (LJ 256 and 864 atoms, dimers, trimers) this generates short crystal and
melt runs at the state point with the generator's (cv_models/generate.py) tiny preset (one LAMMPS process,
cached in ``--work``), builds the perfect crystal on the mean cell of the crystal frames,
and prints, for the old labels (every centre within the example config's
``label_cutoff``) and the new ones (``cv_models/analysis/labels.py``), the share of
molecules labelled crystal in the equilibrated melt frames (false positives) and in the
thermalised and perfect crystal (true positives). A second table labels perfect fcc, hcp
and bcc lattices (``target = "close_packed"`` must reject bcc).

Melt frames of a run stop counting once the melt has nucleated (the old ten Wolde
largest cluster reaches 10 % of the molecules: the 256-atom LJ melt at T = 0.58 freezes
within ~10^4 steps); the table says how many were used.

    .venv/bin/python benchmarks/label_rates.py [--work DIR] [--replicas 2] [--quick]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis.cv_quality import lattice_frame
from latentcv.cv_models.analysis.labels import LabelConfig, crystal_molecules
from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.data.frames import CRYSTAL, MELT, Frame
from latentcv.cv_models.synthetic import BCC_BASIS, FCC_BASIS, lattice_positions, molecular_frame

# the trimer crystal's 8 centres per cell (examples/trimers/system.lmp), rods along x
TRIMER_BASIS = np.array(
    [[0, 0, 0], [0, 0.5, 0], [0, 0.25, 0.5], [0, 0.75, 0.5], [0.5, 0.25, 1 / 6], [0.5, 0.75, 1 / 6]]
    + [[0.5, 0.5, 2 / 3], [0.5, 0, 2 / 3]]
)


@dataclass
class Case:
    """One system: the generator's system and size, the old labels' criterion and cutoff
    (examples/<system>/train.toml)."""

    name: str
    system: str
    n_cells: int
    criterion: str
    cutoff: float


CASES = [
    Case("LJ 256", "lj", 4, "ten_wolde", 1.5),
    Case("LJ 864", "lj", 6, "ten_wolde", 1.5),
    Case("dimers 256", "dimers", 4, "ten_wolde", 1.6),
    Case("trimers 216", "trimers", 3, "local_p2", 1.5),
]


def variants(case: Case) -> list[tuple[str, LabelConfig]]:
    """(row name, labels) compared for ``case``: old, cutoff + minimum count, 12 nearest (+ close-packed)."""
    old = LabelConfig(case.criterion, case.cutoff, neighbours=0)
    min_n = 6 if case.criterion == "local_p2" else 10
    rows = [
        (f"old: within {case.cutoff}", old),
        (f"within {case.cutoff}, min {min_n} neighbours", replace(old, min_neighbours=min_n)),
        ("new: 12 nearest", replace(old, neighbours=12)),
    ]
    if case.criterion == "ten_wolde":
        rows.append(("12 nearest, close_packed", replace(old, neighbours=12, target="close_packed")))
    return rows


def load_case(case: Case, work: Path, replicas: int, quick: bool) -> list[Frame]:
    """Crystal and melt frames of ``case`` (generated once into ``work``)."""
    from latentcv.cv_models.generate import GeneratorConfig, generate

    path = work / f"{case.system}{case.n_cells}.npz"
    if path.exists():
        return list(Dataset.load(path))
    steps = dict(melt_steps=3000, quench_steps=2000, equil_steps=4000, prod_steps=10000, dump_every=1000)
    if quick:
        steps = dict(melt_steps=1500, quench_steps=500, equil_steps=500, prod_steps=1000, dump_every=500)
    cfg = GeneratorConfig.preset(
        "tiny", case.system, n_cells=case.n_cells, phases=("crystal", "melt"), replicas=replicas, chunk_steps=0, **steps
    )
    ds = generate(cfg, work / f"{case.system}{case.n_cells}")
    ds.save(path)
    return list(ds)


def equilibrated_melt(frames: list[Frame], case: Case) -> list[Frame]:
    """Melt frames of each run up to the first whose old ten Wolde largest cluster reaches 10 % (nucleated)."""
    out, stopped = [], set()
    for f in frames:
        if f.label != MELT or f.trajectory in stopped:
            continue
        if case.criterion == "ten_wolde":
            r = ten_wolde_frame(f, TenWoldeConfig(cutoff=case.cutoff))
            if r.largest_cluster >= 0.1 * f.n_molecules:
                stopped.add(f.trajectory)
                continue
        out.append(f)
    return out


def perfect_crystal(crystal: Frame, case: Case, rng: np.random.Generator) -> Frame:
    """The perfect lattice of ``case`` on the (orthorhombic) cell of a crystal frame."""
    edges = np.diag(crystal.cell) / case.n_cells
    if case.system == "trimers":
        centres, cell = lattice_positions(TRIMER_BASIS, case.n_cells, edges)
        rods = centres[:, None, :] + np.array([[-0.5, 0, 0], [0, 0, 0], [0.5, 0, 0]])[None]
        f = molecular_frame(centres, cell, 1, rng, label=CRYSTAL)
        return replace(
            f,
            positions=rods.reshape(-1, 3),
            molecule=np.repeat(np.arange(len(centres)), 3),
            species=np.zeros(3 * len(centres), np.int64),
        )
    centres, cell = lattice_positions(FCC_BASIS, case.n_cells, edges)
    return molecular_frame(centres, cell, crystal.atoms_per_molecule, rng, ordered=False, label=CRYSTAL)


def share(frames: list[Frame], cfg: LabelConfig) -> float:
    """Percentage of the molecules of ``frames`` labelled crystal."""
    return 100 * float(np.mean(np.concatenate([crystal_molecules(f, cfg) for f in frames]))) if frames else float("nan")


def rates_table(work: Path, replicas: int, quick: bool) -> str:
    """The markdown table of melt FP / crystal TP over every case and variant."""
    rng = np.random.default_rng(0)
    lines = [
        "| system | labels | melt FP % | crystal TP % (thermal) | crystal TP % (perfect) | frames melt / crystal |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        frames = load_case(case, work, replicas, quick)
        crystal = [f for f in frames if f.label == CRYSTAL]
        melt = equilibrated_melt(frames, case)
        n_melt = sum(f.label == MELT for f in frames)
        perfect = perfect_crystal(crystal[0], case, rng)
        for name, cfg in variants(case):
            fp, tp, tpp = share(melt, cfg), share(crystal, cfg), share([perfect], cfg)
            lines.append(
                f"| {case.name} | {name} | {fp:.2f} | {tp:.2f} | {tpp:.1f} | {len(melt)} of {n_melt} / {len(crystal)} |"
            )
    return "\n".join(lines)


def lattice_table(noise: float = 0.06) -> str:
    """Share labelled crystal on perfect and noisy (``noise`` σ) fcc, hcp, bcc lattices."""
    rng = np.random.default_rng(1)
    bcc, cell = lattice_positions(BCC_BASIS, 5, (2 / 1.04) ** (1 / 3))
    lattices = {
        "fcc": lattice_frame("fcc", 4),
        "hcp": lattice_frame("hcp", 4),
        "bcc": molecular_frame(bcc, cell, 1, rng),
    }
    rows = [
        ("ten Wolde within 1.5 (old)", LabelConfig("ten_wolde", 1.5, neighbours=0)),
        ("ten Wolde, 12 nearest", LabelConfig("ten_wolde", neighbours=12)),
        ("12 nearest, close_packed", LabelConfig("ten_wolde", neighbours=12, target="close_packed")),
    ]
    head = " | ".join(f"{k} | {k} +{noise}σ" for k in lattices)
    lines = [f"| labels | {head} |", "|---|" + "---|" * 2 * len(lattices)]
    for name, cfg in rows:
        cells = []
        for f in lattices.values():
            noisy = replace(f, positions=f.positions + rng.normal(scale=noise, size=f.positions.shape))
            cells += [f"{share([f], cfg):.0f}", f"{share([noisy], cfg):.1f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/latentcv-label-rates"))
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="a few hundred steps per run (smoke test)")
    a = p.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    print("Per-molecule labels: % of molecules labelled crystal\n")
    print(rates_table(a.work, a.replicas, a.quick))
    print("\nPerfect (and noisy) lattices at density 1.04: % labelled crystal\n")
    print(lattice_table())


if __name__ == "__main__":
    main()
