"""A biased run that blew up: atoms flew apart under too steep a bias, and LAMMPS stopped.

A bias whose hills are very narrow (a CV that barely moves in the melt) can push with
forces the time step cannot integrate; LAMMPS then loses atoms or finds a molecule's bonded
atoms missing and stops with an ERROR line in its log. That is a result of the run (the
CV and its hills are unstable at this time step), not a fault of the machine: `latentcv
compare` records it so that the table has every seed and a rerun does not repeat it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BlowUp", "lammps_blow_up"]

# LAMMPS's errors for atoms that left the box or their bonded partners' reach
_BLOW_UP = re.compile(
    r"Lost atoms|(Bond|Angle|Dihedral|Improper) atoms .*missing|Out of range atoms|Non-numeric atom coords",
    re.IGNORECASE,
)
_AT_STEP = re.compile(r"at step (\d+)")


@dataclass(frozen=True)
class BlowUp:
    """step: the MD step LAMMPS names (None when its message has none); message: its ERROR line."""

    step: int | None
    message: str


def lammps_blow_up(folder: Path) -> BlowUp | None:
    """The blow-up that ended the run in ``folder``: the ERROR line of its newest LAMMPS log
    (``log.lammps`` or ``log.from<step>.lammps``) when it is one of atoms flying apart;
    None when the log ends in another error or in none."""
    logs = sorted(Path(folder).glob("log*.lammps"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return None
    for line in reversed(logs[-1].read_text(errors="replace").splitlines()):
        if line.startswith("ERROR"):
            if not _BLOW_UP.search(line):
                return None
            at = _AT_STEP.search(line)
            return BlowUp(int(at.group(1)) if at else None, line.strip())
    return None
