"""Which crystal the biased runs of ``latentcv compare`` made: the structure types of each
run's frame at crystallisation and its last frame, by OVITO (polyhedral template matching
and adaptive common-neighbour analysis, two independent structure-type judges), the
number of grains (OVITO's grain segmentation, grains of ≥ 5 % of the molecules) and
freud's ten Wolde solid fraction (the system's ``tenwolde_cutoff``); with ``--relax N``,
also the PTM types after N unbiased NPT steps from the last frame (what the bias left,
relaxed: a crystal stays one and anneals, a bias-made disorder melts), and the PTM types of
a thermal crystal of the same system, size and temperature (the reference: PTM's reading of
the target crystal itself; the system's crystal protocol, ``examples/<system>/crystal.lmp``
through :func:`~latentcv.cv_models.generate.generate`: its equilibration, then N steps).

Each run's system, size and temperature come from its ``result.json`` (``key``). Every
analysis works on molecule centres: LJ atoms (fcc) and the LJ dimers (a plastic crystal,
centres on fcc). The relaxation builds the box with the system's own LAMMPS setup
(``examples/<system>/system.lmp``, :func:`~latentcv.cv_models.systems.system_commands`),
then puts the last frame's cell and positions in it. The trimers and mW are refused: PTM of
centres does not name their crystals (rods in layers; ice, judged by CHILL+ and OVITO's
diamond identification in the run's ``result.json``). Nothing is written into the compare
folders; the reference crystal's LAMMPS files go to ``--out`` (default: a temporary folder).
Needs OVITO (``make bench-deps``).

    .venv/bin/python benchmarks/final_structures.py /tmp/cmp2048/cmp_ncrystal_wide_long [more folders] [--relax 20000]
    .venv/bin/python benchmarks/final_structures.py /tmp/cmpdim/cmp864 --relax 20000 --out /tmp/final_structures_dimers
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from latentcv.cv_models.analysis.crystallinity import freud_solid_fraction, ovito_data, ovito_structures
from latentcv.cv_models.data import read_lammps_dump
from latentcv.cv_models.data.frames import Frame
from latentcv.cv_models.systems import SYSTEMS, SystemSpec

TYPES = ("fcc", "hcp", "bcc", "ico", "other")
JUDGED = ("lj", "dimers")  # systems whose crystal PTM of the molecule centres names (fcc)
REFUSED = {
    "trimers": "their crystal (aligned rods in AB-stacked layers) is judged by local P2, not by PTM of centres",
    "mw": "ice is judged by CHILL+ and OVITO's diamond identification (the 'structure' of each result.json)",
}
RELAX_SEED = 4242  # velocity seed of the unbiased relaxation


def run_system(run: Path, key: dict) -> tuple[SystemSpec, int, float]:
    """The system, unit cells per edge and temperature of a compare run (its result.json ``key``);
    SystemExit for the systems this script cannot judge."""
    if key.get("system_file"):
        raise SystemExit(f"{run}: a run of a user system file ({key['system_file']}): not judged here")
    name = key.get("system", "lj")
    if name not in JUDGED:
        why = REFUSED.get(name, "unknown system")
        raise SystemExit(f"{run}: system {name!r} is not judged here ({why}); this script judges {', '.join(JUDGED)}")
    spec = SYSTEMS[name]
    return spec, int(key["cells"]), float(key.get("temp", spec.temperature))


def cna_and_grains(frame: Frame) -> tuple[dict[str, float], int]:
    """Adaptive CNA fractions of the molecule centres and the number of grains holding ≥ 5 % of them."""
    from ovito.modifiers import (
        CommonNeighborAnalysisModifier,
        GrainSegmentationModifier,
        PolyhedralTemplateMatchingModifier,
    )

    data = ovito_data(frame)
    data.apply(CommonNeighborAnalysisModifier())
    n = frame.n_molecules
    cna = {k: data.attributes[f"CommonNeighborAnalysis.counts.{k.upper()}"] / n for k in TYPES[:4]}
    cna["other"] = 1.0 - sum(cna.values())
    grains = ovito_data(frame)
    grains.apply(PolyhedralTemplateMatchingModifier(output_orientation=True))
    grains.apply(GrainSegmentationModifier(min_grain_size=max(int(0.05 * n), 2)))
    return cna, int(grains.attributes["GrainSegmentation.grain_count"])


def atoms_by_id(lmp, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A per-atom LAMMPS array (a writable view; this one process holds every atom) and
    the order that sorts it by atom id."""
    n = lmp.extract_setting("nlocal")
    return lmp.numpy.extract_atom(name)[:n], np.argsort(lmp.numpy.extract_atom("id")[:n])


def load_frame(lmp, spec: SystemSpec, cells: int, frame: Frame, folder: Path) -> None:
    """Build ``spec``'s box of ``cells``³ unit cells with its own LAMMPS setup (styles,
    molecule topology, force field: ``system.lmp``), then give it the frame's cell and
    positions by ``read_dump`` (of the frame written to ``folder``; the frame's atoms in
    LAMMPS id order, as a sorted dump holds them; at step 0)."""
    from dataclasses import replace

    from latentcv.cv_models.data.writers import write_lammps_dump
    from latentcv.cv_models.systems import system_commands

    lmp.commands_string(system_commands(spec.name, cells))
    if lmp.get_natoms() != frame.n_atoms:
        raise ValueError(
            f"{frame.trajectory}: {frame.n_atoms} atoms, {spec.name} with {cells} cells per edge has {lmp.get_natoms()}"
        )
    if spec.atoms_per_molecule > 1:
        mol, order = atoms_by_id(lmp, "molecule")
        if not np.array_equal(np.unique(mol[order], return_inverse=True)[1].ravel(), frame.molecule):
            raise ValueError(f"{frame.trajectory}: the frame's molecules are not those of {spec.name}'s box")
    write_lammps_dump(folder / "frame.dump", [replace(frame, timestep=0)], wrap=False)
    lmp.command(f"read_dump {folder / 'frame.dump'} 0 x y z box yes")  # LAMMPS wraps the atoms into the box


def relaxed(frame: Frame, spec: SystemSpec, cells: int, steps: int, temp: float) -> Frame:
    """The frame after ``steps`` unbiased NPT steps of its system at ``temp`` and the
    system's pressure, time step and damping (fresh velocities, seed ``RELAX_SEED``)."""
    from latentcv.cv_models.engines import open_lammps

    lmp = open_lammps(["-log", "none"])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            load_frame(lmp, spec, cells, frame, Path(tmp))
        p = spec.pressure
        for line in (
            f"velocity all create {temp} {RELAX_SEED} mom yes rot yes dist gaussian",
            f"fix md all npt temp {temp} {temp} {spec.tdamp} iso {p} {p} {spec.pdamp}",
            f"run {steps}",
        ):
            lmp.command(line)
        x, order = atoms_by_id(lmp, "x")
        x = np.array(x[order], dtype=np.float64)
        lo, hi = np.array(lmp.extract_box()[0]), np.array(lmp.extract_box()[1])
    finally:
        lmp.close()
    return Frame(x - lo, np.diag(hi - lo), frame.molecule.copy(), frame.species.copy(), length_unit=frame.length_unit)


def thermal_crystal(spec: SystemSpec, cells: int, temp: float, steps: int, out: Path) -> list[Frame]:
    """The frames of the system's crystal protocol (``examples/<system>/crystal.lmp``: the
    lattice equilibrated, then ``steps`` NPT steps at ``temp``, 11 frames), its files in ``out``."""
    from latentcv.cv_models.generate import GeneratorConfig, generate

    every = max(steps // 10, 1)
    cfg = GeneratorConfig(
        system=spec.name, n_cells=cells, phases=("crystal",), temperature=temp, prod_steps=steps, dump_every=every
    )
    return generate(cfg, out, progress=False).frames


def pct(fractions: dict[str, float]) -> str:
    """fcc/hcp/bcc/ico/other in whole percent."""
    return "/".join(f"{100 * fractions[k]:.0f}" for k in TYPES)


def row(run: Path, relax: int) -> tuple[str, tuple[SystemSpec, int, float]] | None:
    """The markdown row of one run and its (system, cells, temperature) (None: not finished)."""
    result = run / "result.json"
    if not result.exists():
        return None
    r = json.loads(result.read_text())
    spec, cells, temp = run_system(run, r["key"])
    frames = read_lammps_dump(run / "traj.dump", units=spec.units)
    at = r["crystallised_at"]
    first = next((f for f in frames if at is not None and f.timestep >= at), None)
    last = frames[-1]
    cna_last, grains = cna_and_grains(last)
    ptm_first = pct(ovito_structures(first)) if first is not None else "–"
    after = pct(ovito_structures(relaxed(last, spec, cells, relax, temp))) if relax else "–"
    solid = freud_solid_fraction(last, spec.tenwolde_cutoff)
    line = (
        f"| {run.name} | {'never' if at is None else at} | {last.timestep} | {ptm_first} | "
        f"{pct(ovito_structures(last))} | {pct(cna_last)} | {grains} | {solid:.2f} | {after} |"
    )
    return line, (spec, cells, temp)


def print_references(systems: set[tuple[SystemSpec, int, float]], steps: int, out: Path) -> None:
    """PTM of the thermal crystal of every (system, cells, temperature) of the runs: the
    mean over its frames (one frame's reading scatters by several points) and the fcc range."""
    for spec, cells, temp in sorted(systems, key=lambda s: (s[0].name, s[1], s[2])):
        frames = thermal_crystal(spec, cells, temp, steps, out / f"{spec.name}-cells{cells}-T{temp:g}")
        ptm = [ovito_structures(f) for f in frames]
        mean = {k: float(np.mean([p[k] for p in ptm])) for k in TYPES}
        fcc = [100 * p["fcc"] for p in ptm]
        print(
            f"\nthermal {spec.name} crystal, {spec.n_molecules(cells)} molecules ({cells} cells per edge), "
            f"examples/{spec.name}/crystal.lmp: equilibration, then {steps} NPT steps at T = {temp:g}, "
            f"P = {spec.pressure:g}: PTM {pct(mean)} % (fcc/hcp/bcc/ico/other; mean of {len(ptm)} frames, "
            f"fcc {min(fcc):.0f}–{max(fcc):.0f} %; last frame {pct(ptm[-1])})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", help="latentcv compare output folders (read only)")
    ap.add_argument("--relax", type=int, default=0, help="unbiased NPT steps from the last frame (0: none)")
    ap.add_argument("--runs", default="*", help="run folders to judge, a glob in <folder>/runs (default: all)")
    ap.add_argument("--out", default=None, help="folder for the reference crystal's LAMMPS files (default: temporary)")
    args = ap.parse_args()
    folders = [Path(f).resolve() for f in args.folders]
    if args.out and any(Path(args.out).resolve().is_relative_to(f) for f in folders):
        raise SystemExit(f"--out {args.out} lies inside a compare folder: give one outside them (they are only read)")
    print(
        "| run | crystallised at | last frame | PTM at crystallisation (fcc/hcp/bcc/ico/other %) | "
        f"PTM last frame | adaptive CNA last frame | grains (≥ 5 %) | ten Wolde solid, last frame | "
        f"PTM after {args.relax} unbiased steps |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    systems: set[tuple[SystemSpec, int, float]] = set()
    for folder in folders:
        print(f"| **{folder.name}** | | | | | | | | |", flush=True)
        for run in sorted(p for p in (folder / "runs").glob(args.runs) if p.is_dir()):
            done = row(run, args.relax)
            if done:
                print(done[0], flush=True)
                systems.add(done[1])
    if args.relax:
        with tempfile.TemporaryDirectory() as tmp:
            print_references(systems, args.relax, Path(args.out) if args.out else Path(tmp))


if __name__ == "__main__":
    main()
