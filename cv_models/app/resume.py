"""Carrying a metadynamics run over several sittings: LAMMPS restart files, the dump cut
back to the restart step, and the wall time of earlier sittings.

A run started with ``restart_every`` > 0 writes ``rs.<step>`` restart files into its folder
(LAMMPS ``restart N rs.*``) and ``sittings.json`` (the MD wall seconds reached at each
checked step). Started again with ``resume`` in the same folder, with the same settings
(``run.json``), it continues from the newest restart file: LAMMPS ``read_restart``, latentcv's
``fix plumed`` cuts HILLS and COLVAR back to that step (docs/restarts.md), and
:func:`cut_dump` does the same for the judged dump. Nothing is thrown away: what is cut is
kept beside the file (``traj.dump.cut.<step>``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from latentcv.cv_models.atomic_write import write_atomically

RESTART_STEM = "rs"
_RESTART = re.compile(rf"^{RESTART_STEM}\.(\d+)$")


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: the restart file, its step, and the MD wall seconds the
    earlier sittings took to reach it."""

    restart_file: Path
    step: int
    seconds: float


def restart_files(folder: Path) -> dict[int, Path]:
    """The run's LAMMPS restart files ``rs.<step>`` by step."""
    found = {}
    for path in Path(folder).glob(f"{RESTART_STEM}.*"):
        m = _RESTART.match(path.name)
        if m:
            found[int(m.group(1))] = path
    return found


def resume_point(
    folder: Path, fingerprint: str, also: Iterable[str] = (), before: int | None = None
) -> ResumePoint | None:
    """The newest complete restart file of the run in ``folder`` when that run had this
    ``fingerprint`` (its settings, ``run.json``) or one of ``also`` (the same settings as an
    older latentcv recorded them); None: nothing to resume. Complete: at or before the last
    step ``sittings.json`` records (noted after the restart file of that step was written),
    so a file a kill cut in half is never read. ``before``: only restart files of earlier
    steps (the budget of the run that resumes: a shorter budget resumes before its end)."""
    folder = Path(folder)
    record = folder / "run.json"
    if not record.exists() or json.loads(record.read_text()).get("fingerprint") not in {fingerprint, *also}:
        return None
    reached = _reached(folder)
    files = {
        s: p
        for s, p in restart_files(folder).items()
        if reached and s <= max(reached) and (before is None or s < before)
    }
    if not files:
        return None
    step = max(files)
    return ResumePoint(files[step], step, _seconds_at(folder, step))


def record_fingerprint(folder: Path, fingerprint: str) -> None:
    """Record the settings of the run in ``folder`` (``run.json``), keeping its files."""
    write_atomically(Path(folder) / "run.json", json.dumps({"fingerprint": fingerprint}).encode(), "run record")


def start_fresh(folder: Path, fingerprint: str) -> None:
    """Forget an earlier run's restart files and sittings; record this run's settings."""
    folder = Path(folder)
    for path in restart_files(folder).values():
        path.unlink()
    (folder / "sittings.json").unlink(missing_ok=True)
    record_fingerprint(folder, fingerprint)


def record_sitting(folder: Path, step: int, seconds: float) -> None:
    """Note that the run reached ``step`` after ``seconds`` of MD wall time in all."""
    path = Path(folder) / "sittings.json"
    reached = json.loads(path.read_text()) if path.exists() else {}
    reached[str(step)] = seconds
    write_atomically(path, json.dumps(reached).encode(), "sittings record")


def last_sitting(folder: Path) -> tuple[int, float]:
    """(step, MD wall seconds) of the last check ``sittings.json`` records; (0, 0.0): none."""
    reached = _reached(Path(folder))
    return (max(reached), reached[max(reached)]) if reached else (0, 0.0)


def _reached(folder: Path) -> dict[int, float]:
    """The steps the run reached (checked) and the MD wall seconds by then."""
    path = folder / "sittings.json"
    return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def _seconds_at(folder: Path, step: int) -> float:
    """MD wall seconds recorded at ``step`` (the latest record at or before it; 0: none)."""
    reached = _reached(folder)
    before = [s for s in reached if s <= step]
    return reached[max(before)] if before else 0.0


def cut_dump(dump: Path, step: int) -> None:
    """Cut a LAMMPS dump back to its frames before ``step`` (the resumed run writes the
    frame of ``step`` again); the frames cut away are kept in ``<dump>.cut.<step>``."""
    dump = Path(dump)
    if not dump.exists():
        return
    data = dump.read_bytes()
    cut_at = len(data)
    for m in re.finditer(rb"ITEM: TIMESTEP\n\s*(\d+)\s*\n", data):
        if int(m.group(1)) >= step:
            cut_at = m.start()
            break
    if cut_at == len(data):
        return
    keep = dump.with_name(f"{dump.name}.cut.{step}")
    write_atomically(keep, data[cut_at:], "cut dump frames")
    with open(dump, "r+b") as f:
        f.truncate(cut_at)
