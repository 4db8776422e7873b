"""The one metadynamics runner (cv_models/app/metad_run.py): set up, run, judge; and the
commands and benchmarks that run metadynamics go through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from latentcv.cv_models.app.metad_run import MetadRunConfig, run_metadynamics
from latentcv.cv_models.data.plumed_table import read_plumed_table

ROOT = Path(__file__).resolve().parent.parent
ENERGY_METAD = (
    "e: ENERGY\nmetad: METAD ARG=e SIGMA=1 HEIGHT=0.1 PACE=50 BIASFACTOR=10 TEMP=0.58 FILE={d}/HILLS\n"
    "PRINT ARG=e,metad.bias STRIDE=50 FILE={d}/COLVAR\n"
)


def tiny(folder: Path, **kw) -> MetadRunConfig:
    """32 LJ atoms, a short melt; ``kw`` on top."""
    return MetadRunConfig(
        folder=folder,
        cells=2,
        melt_steps=100,
        equil_steps=50,
        dump_every=100,
        hold_steps=200,
        chunk_steps=100,
        check_every=200,
        progress=False,
        **kw,
    )


def test_a_biased_run_stops_once_crystallised(tmp_path):
    """threshold -1: every frame counts as crystal, so the run stops at the first check
    that covers the hold (step 200 of 2000), with the hills and frames of those steps."""
    cfg = tiny(
        tmp_path / "run",
        plumed=ENERGY_METAD.format(d=tmp_path / "run"),
        steps=2000,
        crystal_threshold=-1.0,
        stop_when_crystallised=True,
    )
    run = run_metadynamics(cfg)
    assert run.biased and run.steps_run == 200 and run.crystallised_at == 0
    assert run.steps == [0, 100, 200] and len(run.fraction) == 3 and run.ms_per_step > 0
    assert run.wall_s_to_crystal == 0.0
    assert len(read_plumed_table(run.folder / "HILLS").data) == 4  # PACE=50 over steps 0..199
    assert read_plumed_table(run.folder / "COLVAR").fields == ["time", "e", "metad.bias"]
    assert (run.folder / "plumed.dat").read_text() == cfg.plumed


def test_an_unbiased_run_is_judged_at_the_end(tmp_path):
    """No plumed.dat, no PLUMED; a previous run's files go first; the melt is judged over
    every frame and is no crystal; without stop_when_crystallised the run goes to the end."""
    folder = tmp_path / "control"
    folder.mkdir()
    (folder / "HILLS").write_text("stale\n")
    run = run_metadynamics(tiny(folder, steps=300, crystal_threshold=0.99))
    assert not run.biased and run.steps_run == 300 and run.crystallised_at is None
    assert run.steps == [0, 100, 200, 300] and max(run.fraction) < 0.99
    assert not (folder / "HILLS").exists() and not (folder / "plumed.dat").exists()
    assert run.dump.exists()


def test_run_settings_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown system 'argon': one of lj, dimers, trimers"):
        MetadRunConfig(tmp_path, system="argon").validate()
    with pytest.raises(ValueError, match="cells = 0 must be >= 1"):
        MetadRunConfig(tmp_path, cells=0).validate()
    with pytest.raises(ValueError, match="steps = -1 must be >= 0"):
        MetadRunConfig(tmp_path, steps=-1).validate()


RUNNERS = ["cv_models/app/demo.py", "cv_models/app/compare.py", "cv_models/app/refine.py", "benchmarks/demo_seeds.py"]
OWN_JOB = {"open_lammps", "run_input", "CrystallisationWatch", "first_crystallisation", "freud_solid_fraction"}


@pytest.mark.parametrize("path", RUNNERS)
def test_commands_run_metadynamics_through_the_runner(path):
    """demo, compare, refine and the seed benchmark neither start LAMMPS nor judge
    crystallinity themselves, and reach no private name of another module."""
    tree = ast.parse((ROOT / path).read_text())
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not OWN_JOB & (names | {name for _, name in imported}), f"{path}: {sorted(OWN_JOB & names)}"
    assert any(name == "run_metadynamics" for _, name in imported) or "run_metadynamics" in names
    private = sorted(f"{m}.{a}" for m, a in imported if a.startswith("_"))
    assert not private, f"{path} imports private names {private}"
