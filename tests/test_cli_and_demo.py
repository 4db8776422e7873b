"""The `latentcv` command line and the demo, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cv_models import paths
from cv_models.cli import main
from export.analytic import save_coordination_model

LATENTCV = [sys.executable, "-m", "cv_models.cli"]


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
    from cv_models.demo import run_demo

    summary = run_demo(tmp_path / "demo", steps=300)
    assert summary["hills"] == 3  # PACE=100: steps 0, 100, 200
    colvar = np.loadtxt(tmp_path / "demo" / "COLVAR", comments="#", ndmin=2)
    assert colvar.shape[0] == 7 and colvar[-1, 3] > 0  # bias switched on
    assert (tmp_path / "demo" / "HILLS").exists()
