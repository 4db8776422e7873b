"""The prepared checks in tools/ run: the last step of tools/cuda_check.sh (load a model
through a built ``_core`` and evaluate it) on the CPU path, with this checkout's core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from latentcv.cv_models.native import paths
from latentcv.export.analytic import save_coordination_model

ROOT = Path(__file__).resolve().parent.parent


def test_cuda_check_evaluates_a_model_through_a_built_core(tmp_path):
    model = save_coordination_model(tmp_path / "coordination.pt", atoms_per_molecule=1, cutoff=1.5, length_unit="lj")
    core_dir = Path(paths.lammps_plugin_path()).parent.parent  # latentcv/cv_models/_lib
    assert list(core_dir.glob("_core*.so")), f"no built _core in {core_dir}"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "cuda_check_run.py"), str(model), str(core_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ran on cpu" in proc.stdout and "|grad|" in proc.stdout, proc.stdout


def test_cuda_check_script_calls_the_tested_step():
    """The shell script runs exactly that file (it called an undefined name before)."""
    text = (ROOT / "tools" / "cuda_check.sh").read_text()
    assert 'tools/cuda_check_run.py" "$MODEL" "$WORK/build/cpp"' in text
    assert "native." not in text
