"""Multiple walkers (`latentcv walkers`): each walker's bias holds its own hills and the
other walker's. Walkers run one after the other here (so what each has read is exact):
walker 1, then walker 0 (which must see all of walker 1's hills), then walker 1 again
(which must see walker 0's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chain_helpers import FREE_PARTICLES

from latentcv.cv_models.app.cli import main as cli_main
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.walkers import walker_inputs

PLUMED = """\
d: DISTANCE ATOMS=1,2
metad: METAD ARG=d PACE=10 HEIGHT=0.2 SIGMA=0.1 FILE=HILLS   # one bias for all walkers
PRINT ARG=d,metad.bias FILE=COLVAR STRIDE=10
"""

INPUT = (
    FREE_PARTICLES
    + """\
velocity all create 1.0 {seed} mom yes rot no
reset_timestep {start}
pair_style zero 2.5
pair_coeff * *
fix md all nve
timestep 0.005
thermo 1000
fix p all plumed plumedfile plumed.{walker}.dat outfile plumed.{walker}.log
run 1500
"""
)


def _run(d: Path, walker: int, seed: int, start: int = 0) -> None:
    (d / "in.lmp").write_text(INPUT.format(walker=walker, seed=seed, start=start))
    proc = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "none"],
        cwd=d,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def _bias(hills: np.ndarray, d: float) -> float:
    """Sum of the Gaussian hills (time, center, sigma, height) at d."""
    return float((hills[:, 3] * np.exp(-0.5 * ((d - hills[:, 1]) / hills[:, 2]) ** 2)).sum())


def test_two_walkers_see_each_others_hills(tmp_path):
    (tmp_path / "plumed.dat").write_text(PLUMED)
    assert cli_main(["walkers", str(tmp_path / "plumed.dat"), "2", "--rstride", "10"]) == 0
    text = (tmp_path / "plumed.1.dat").read_text()
    assert "WALKERS_N=2 WALKERS_ID=1 WALKERS_DIR=. WALKERS_RSTRIDE=10" in text and "FILE=COLVAR.1" in text
    assert "# one bias for all walkers" in text

    _run(tmp_path, 1, seed=11)  # walker 1 alone: its own hills only
    _run(tmp_path, 0, seed=22)  # walker 0: its own + all of walker 1's
    h1, h0 = read_plumed_table(tmp_path / "HILLS.1").data, read_plumed_table(tmp_path / "HILLS.0").data
    assert len(h0) == len(h1) == 150
    t, d, bias = read_plumed_table(tmp_path / "COLVAR.0").data[-1]
    expected = _bias(h0[h0[:, 0] < t - 1e-9], d) + _bias(h1, d)
    assert bias == pytest.approx(expected, rel=1e-2), (bias, expected, _bias(h0[h0[:, 0] < t - 1e-9], d))
    assert _bias(h1, d) > 0.05 * bias  # walker 1's hills are a visible part of it

    # walker 1 again, continuing its time and hills: now it sees walker 0's too
    (tmp_path / "plumed.1.dat").write_text("RESTART\n" + text)
    _run(tmp_path, 1, seed=33, start=1500)
    h1 = read_plumed_table(tmp_path / "HILLS.1").data
    t, d, bias = read_plumed_table(tmp_path / "COLVAR.1").data[-1]
    expected = _bias(h1[h1[:, 0] < t - 1e-9], d) + _bias(h0, d)
    assert bias == pytest.approx(expected, rel=1e-2), (bias, expected)
    assert _bias(h0, d) > 0.05 * bias


def test_walker_inputs_refuse_what_they_cannot_share(tmp_path):
    (tmp_path / "a.dat").write_text("d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1 KAPPA=1\n")
    with pytest.raises(ValueError, match="no METAD"):
        walker_inputs(tmp_path / "a.dat", 2)
    (tmp_path / "b.dat").write_text(PLUMED.replace("FILE=HILLS", "FILE=HILLS WALKERS_N=2"))
    with pytest.raises(ValueError, match="already sets WALKERS"):
        walker_inputs(tmp_path / "b.dat", 2)
    with pytest.raises(ValueError, match="at least 2"):
        walker_inputs(tmp_path / "a.dat", 1)
