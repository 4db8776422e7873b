"""The `latentcv` command line and the demo, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


from latentcv.cv_models.native import paths
from latentcv.cv_models.app.cli import main
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.export.analytic import save_coordination_model

LATENTCV = [sys.executable, "-m", "latentcv.cv_models.app.cli"]


def test_paths_lists_existing_files(capsys):
    assert main(["paths"]) == 0
    out = capsys.readouterr().out
    for p in (paths.plumed_plugin_path(), paths.lammps_plugin_path(), paths.plumed_kernel_path()):
        assert str(p) in out and Path(p).exists()
    assert "MISSING" not in out


def test_plumed_subcommand_runs_the_bundled_plumed(tmp_path):
    proc = subprocess.run(LATENTCV + ["plumed", "info", "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("2.")


def test_info_prints_metadata(tmp_path, capsys):
    model = save_coordination_model(tmp_path / "m.pt", atoms_per_molecule=2, cutoff=1.2)
    assert main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "output_names" in out and "mean,meansq" in out


def test_info_on_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["info", str(tmp_path / "none.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_demo_runs_end_to_end(tmp_path):
    """Generate → train → export → plumed-input → LAMMPS metadynamics → analysis, small."""
    from latentcv.cv_models.app.demo import DemoConfig, run_demo

    cfg = DemoConfig(
        replicas=2,
        prod_steps=600,
        dump_every=50,
        epochs=3,
        md_cells=3,
        md_steps=400,
        melt_steps=300,
        equil_steps=100,
        pace=100,
        control=True,
        interface_cells=(2,),
        interface_steps=300,
        transition_replicas=1,
        transition_steps=600,
        dump_every_md=100,
        progress=False,
    )
    summary = run_demo(tmp_path / "demo", config=cfg)
    out = tmp_path / "demo"
    assert summary["hills"] == 4  # PACE=100 over 400 steps
    colvar = read_plumed_table(out / "metad" / "COLVAR").data
    assert colvar.shape[0] == 5 and colvar[-1, -1] > 0  # the bias switched on
    info = subprocess.run(LATENTCV + ["info", str(out / "model.pt")], capture_output=True, text=True).stdout
    assert "z0,z1,proj,dcrys,n_crystal,n_nucleus" in info
    assert (out / "demo.png").stat().st_size > 10_000
    assert summary["control_max_solid_fraction"] is not None
    # a second run reuses data, training and export
    again = run_demo(tmp_path / "demo", config=cfg)
    assert again["hills"] == 4
    assert (out / "train" / "checkpoint.pt").stat().st_mtime < (out / "model.pt").stat().st_mtime
