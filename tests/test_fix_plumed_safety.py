"""`fix plumed` where hills used to be lost or LAMMPS crashed: atoms changed under the fix
(count, IDs, identity; a SIGSEGV before), and PLUMED's files failing to be written (a file
size limit, a full file system; exit 0 with hills missing before). Each must stop LAMMPS
with an error naming the cause and the remedy, keep every hill deposited before, and leave
PLUMED's files made of whole lines. Runs are subprocesses, so a crash fails one test only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chain_helpers import FREE_PARTICLES

PLUMED = """\
d: DISTANCE ATOMS=1,2
metad: METAD ARG=d PACE=25 HEIGHT=0.3 SIGMA=0.08 FILE=HILLS
PRINT ARG=d,metad.bias FILE=COLVAR STRIDE=50
"""

SETUP = (
    FREE_PARTICLES
    + """\
velocity all create 1.0 4 mom yes rot no
pair_style zero 2.5
pair_coeff * *
fix md all nve
timestep 0.005
thermo 1000
"""
)

REMEDY = "`unfix p` and define it again after the change"


def _lmp(workdir: Path, script: str) -> subprocess.CompletedProcess:
    (workdir / "plumed.dat").write_text(PLUMED)
    (workdir / "in.lmp").write_text(script)
    return subprocess.run(
        [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "none"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _whole_lines(path: Path) -> np.ndarray:
    """The data rows of a PLUMED file; fails on a line of another width (a half line)."""
    text = path.read_text()
    assert text.endswith("\n"), f"{path.name} ends in a half line"
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len({len(r) for r in rows}) <= 1, f"{path.name}: lines of different widths"
    return np.array(rows, dtype=float)


@pytest.mark.parametrize(
    "change, message",
    [
        ("delete_atoms group one\ncreate_atoms 1 single 0.5 0.5 0.5", "1 atom(s) created and as many deleted"),
        (
            "delete_atoms group one compress yes\ncreate_atoms 1 single 0.5 0.5 0.5",
            "1 atom(s) created and as many deleted",
        ),
        ("reset_atoms id sort yes", "the IDs of"),
        ("delete_atoms group one", "the number of atoms changed from 27 to 26"),
        ("create_atoms 1 single 0.5 0.5 0.5", "the number of atoms changed from 27 to 28"),
        ("delete_atoms group one compress yes", "the number of atoms changed from 27 to 26"),
    ],
)
def test_atoms_changed_under_the_fix_stop_with_the_remedy_and_keep_the_hills(tmp_path, change, message):
    script = SETUP + "fix p all plumed plumedfile plumed.dat outfile plumed.log\nrun 100\ngroup one id 5\n"
    proc = _lmp(tmp_path, script + change + "\nrun 100\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode > 0, f"exit {proc.returncode} (a signal if < 0)\n{out[-2000:]}"
    assert f"ERROR: fix plumed: {message}" in out and REMEDY in out, out[-2000:]
    assert len(_whole_lines(tmp_path / "HILLS")) == 100 // 25  # the hills of the first run, all kept


def test_replicate_under_the_fix_is_a_lammps_error_not_a_crash(tmp_path):
    script = SETUP + "fix p all plumed plumedfile plumed.dat outfile plumed.log\nrun 100\nreplicate 1 1 2\nrun 100\n"
    proc = _lmp(tmp_path, script)
    assert proc.returncode > 0
    assert "Cannot replicate with fixes that store per-atom quantities" in proc.stdout + proc.stderr
    assert len(_whole_lines(tmp_path / "HILLS")) == 100 // 25


def test_atoms_reordered_by_lammps_are_the_same_atoms(tmp_path):
    """Sorting every step and `run 0` change the storage order, not the atoms: no error, and
    the same hills as without sorting."""
    body = "fix p all plumed plumedfile plumed.dat outfile plumed.log\nrun 100\nrun 0\nrun 100\n"
    (tmp_path / "sorted").mkdir()
    (tmp_path / "plain").mkdir()
    sorted_run = _lmp(tmp_path / "sorted", SETUP + "atom_modify sort 1 0.3\n" + body)
    plain_run = _lmp(tmp_path / "plain", SETUP + body)
    assert sorted_run.returncode == 0 and plain_run.returncode == 0, sorted_run.stdout[-2000:]
    hills = _whole_lines(tmp_path / "sorted" / "HILLS")
    assert len(hills) == 200 // 25
    np.testing.assert_allclose(hills, _whole_lines(tmp_path / "plain" / "HILLS"), rtol=1e-8)


# --------------------------------------------------------------------------- write failures
FAST_PLUMED = PLUMED.replace("PACE=25", "PACE=5 FMT=%24.16e").replace("STRIDE=50", "STRIDE=5 FMT=%24.16e")
LIMITED = """
import resource, signal, sys
from latentcv.cv_models.engines import open_lammps
lmp = open_lammps(load_fix_plumed=True)  # MPI starts before the limit (it writes shared-memory files)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
lmp.file("in.lmp")
"""


def _limited_run(workdir: Path, fix_extra: str, steps: int, limit: int) -> subprocess.CompletedProcess:
    (workdir / "plumed.dat").write_text(FAST_PLUMED)
    (workdir / "in.lmp").write_text(
        SETUP + f"fix p all plumed plumedfile plumed.dat outfile plumed.log {fix_extra}\nrun {steps}\n"
    )
    return subprocess.run(
        [sys.executable, "-c", LIMITED, str(limit)], cwd=workdir, capture_output=True, text=True, timeout=300
    )


def test_a_write_failure_on_hills_stops_the_run_with_whole_lines_kept(tmp_path):
    proc = _limited_run(tmp_path, "reserve 0", steps=3000, limit=20000)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "fix plumed: PLUMED's output at step" in out and "File too large" in out, out[-2000:]
    assert "resume from the last restart file" in out
    hills = _whole_lines(tmp_path / "HILLS")
    colvar = _whole_lines(tmp_path / "COLVAR")
    assert 50 < len(hills) < 3000 // 5 and len(colvar) > 50  # up to the limit, each line whole
    np.testing.assert_allclose(np.diff(hills[:, 0]), 5 * 0.005)  # no hill missing in between


def test_the_reserve_stops_the_run_before_the_disk_is_full(tmp_path):
    proc = _lmp(tmp_path, SETUP + "fix p all plumed plumedfile plumed.dat outfile plumed.log reserve 1e12\nrun 200\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode > 0
    assert "free on the file system of" in out and "keyword reserve" in out, out[-2000:]
    assert len(_whole_lines(tmp_path / "HILLS")) == 200 // 25


@pytest.mark.parametrize(
    "keyword, message",
    [("reserve -1", "reserve '-1'"), ("reserve abc", "reserve 'abc'"), ("resume maybe", "resume 'maybe'")],
)
def test_bad_keywords_are_errors_naming_the_choices(tmp_path, keyword, message):
    proc = _lmp(tmp_path, SETUP + f"fix p all plumed plumedfile plumed.dat {keyword}\nrun 10\n")
    assert proc.returncode > 0 and f"ERROR: fix plumed: {message}" in proc.stdout + proc.stderr


def _tmpfs_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _tmpfs_available(),
    reason="no private mount namespace (unshare -rm) to make a small "
    "file system in; the file size limit test covers the path",
)
@pytest.mark.parametrize("reserve", ["", "reserve 0"])
def test_a_full_file_system_stops_the_run(tmp_path, reserve):
    """HILLS and COLVAR on a 48 kB tmpfs (a private mount): with the default reserve the run
    stops at once for lack of space; with no reserve it stops when writing fails."""
    (tmp_path / "plumed.dat").write_text(FAST_PLUMED)
    script = SETUP + f"fix p all plumed plumedfile plumed.dat outfile plumed.log {reserve}\nrun 3000\n"
    (tmp_path / "in.lmp").write_text(script)
    runner = (
        "from latentcv.cv_models.engines import open_lammps\n"
        "lmp = open_lammps(load_fix_plumed=True)\nlmp.file('in.lmp')\n"
    )
    shell = (
        f"mount -t tmpfs -o size=48k tmpfs {tmp_path / 'disk'} && cp {tmp_path}/in.lmp {tmp_path}/plumed.dat "
        f'{tmp_path / "disk"} && cd {tmp_path / "disk"} && {sys.executable} -c "$RUNNER"; rc=$?; '
        f"cp HILLS COLVAR {tmp_path}/ 2>/dev/null; exit $rc"
    )
    (tmp_path / "disk").mkdir()
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell],
        env={**os.environ, "RUNNER": runner},
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    if reserve:
        assert "No space left on device" in out or "half line" in out, out[-2000:]
    else:
        assert "free on the file system of" in out, out[-2000:]
    for name in ("HILLS", "COLVAR"):
        if (tmp_path / name).exists():
            _whole_lines(tmp_path / name)
