"""Restarts: a metadynamics run killed with SIGKILL at three different moments and resumed
each time from its last LAMMPS restart file (`read_restart`, the same `fix plumed` line)
ends with the same HILLS and COLVAR as the uninterrupted run: no hill lost, repeated or
cut (docs/restarts.md).

Free particles (`pair_style zero`) with a bias on one distance, and hills written in full
precision (METAD FMT=%24.16e: a restarted PLUMED rebuilds its bias from the HILLS file, so
the default 9 digits would make the runs differ at 1e-9 from the first restart on)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from chain_helpers import FREE_PARTICLES

STEPS = 30000
EVERY = 2000  # restart files
KILL_AFTER = (6000, 14000, 22000)  # kill once the restart file of this step exists

PLUMED = """\
d: DISTANCE ATOMS=1,2
metad: METAD ARG=d PACE=25 HEIGHT=0.3 SIGMA=0.08 FILE=HILLS FMT=%24.16e
PRINT ARG=d,metad.bias FILE=COLVAR STRIDE=50 FMT=%24.16e
"""

FRESH = FREE_PARTICLES + "velocity all create 1.0 4 mom yes rot no\n"

TAIL = """\
pair_style zero 2.5
pair_coeff * *
neighbor 0.3 bin
fix md all nve
timestep 0.005
thermo 5000
restart {every} rs.*
fix p all plumed plumedfile plumed.dat outfile plumed.log
run {steps} upto
"""


def _start(workdir: Path, restart: bool) -> subprocess.Popen:
    head = "read_restart rs.*\n" if restart else FRESH  # rs.*: the restart file of the latest step
    (workdir / "in.lmp").write_text(head + TAIL.format(every=EVERY, steps=STEPS))
    return subprocess.Popen([str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "log.lammps"],
                            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _lammps_child(wrapper: subprocess.Popen) -> int:
    children = Path(f"/proc/{wrapper.pid}/task/{wrapper.pid}/children").read_text().split()
    assert children, "no LAMMPS process under the lmp wrapper"
    return int(children[0])


def _data(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    widths = {len(r) for r in rows}
    assert len(widths) == 1, f"{path.name}: lines of {sorted(widths)} fields (a cut line?)"
    return np.array(rows, dtype=float)


def test_sigkill_at_three_moments_loses_and_repeats_no_hill(tmp_path):
    ref, run = tmp_path / "uninterrupted", tmp_path / "killed"
    for d in (ref, run):
        d.mkdir()
        (d / "plumed.dat").write_text(PLUMED)
    proc = _start(ref, restart=False)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]

    killed_at = []
    for k, after in enumerate(KILL_AFTER):
        proc = _start(run, restart=k > 0)
        deadline = time.time() + 300
        while not (run / f"rs.{after}").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before step {after}: make STEPS larger"
        # then until PLUMED's buffered output reached the files beyond that restart point
        # (lines the restart must cut off again)
        grown = (run / "HILLS").stat().st_size
        while (run / "HILLS").stat().st_size <= grown and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, f"the run ended before its files grew past step {after}: make STEPS larger"
        os.kill(_lammps_child(proc), signal.SIGKILL)
        proc.wait(timeout=60)
        killed_at.append(max(int(p.suffix[1:]) for p in run.glob("rs.*")))
    proc = _start(run, restart=True)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]

    log = (run / "log.lammps").read_text()
    cuts = [line for line in log.splitlines() if "restart from step" in line]
    assert len(cuts) == 1  # log.lammps is rewritten by each restart: the last one's line
    sizes = [(int(a), int(b)) for a, b in re.findall(r"\((\d+) -> (\d+) bytes\)", cuts[0])]
    assert any(a > b for a, b in sizes), f"the files had not grown past the restart point: {cuts[0]}"
    for name in ("HILLS", "COLVAR"):
        a, b = _data(ref / name), _data(run / name)
        assert a.shape == b.shape, f"{name}: {b.shape[0]} lines after kills at {killed_at}, {a.shape[0]} uninterrupted"
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)
    assert _data(ref / "HILLS").shape[0] == STEPS // 25
