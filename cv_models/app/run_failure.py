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
# latentcv's own refusal of a molecule wider than the model's molecule_extent: words of the
# message Model::Impl::check_molecule_extent writes (cpp/latentcv/model.cpp); keep them in step
_TORN = "molecules are at most"
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class BlowUp:
    """step: the MD step LAMMPS names (None when its message has none); message: its ERROR line."""

    step: int | None
    message: str


def lammps_blow_up(folder: Path) -> BlowUp | None:
    """The blow-up that ended the run in ``folder``: the last ERROR of its newest LAMMPS log
    (``log.lammps`` or ``log.from<step>.lammps``) when it is one of atoms flying apart, or
    latentcv's refusal of a molecule wider than the model allows after the run had started
    (torn apart; at step 0 that refusal means ATOMS misordered, an input error); None when
    the log ends in another error or in none."""
    logs = sorted(Path(folder).glob("log*.lammps"), key=lambda p: p.stat().st_mtime)
    lines = logs[-1].read_text(errors="replace").splitlines() if logs else []
    errors = [k for k, line in enumerate(lines) if line.startswith("ERROR")]
    if not errors:
        return None
    block = " ".join(line.strip() for line in lines[errors[-1] : errors[-1] + 12])
    if _BLOW_UP.search(block):
        at = _AT_STEP.search(block)
        return BlowUp(int(at.group(1)) if at else None, lines[errors[-1]].strip())
    last_step = _last_thermo_step(lines[: errors[-1]])
    if _TORN in block and last_step:  # mid-run: the molecule was torn apart, not misordered
        torn = next(line.strip() for line in lines[errors[-1] :] if _TORN in line)
        return BlowUp(last_step, torn)  # the last thermo step before it
    return None


def _last_thermo_step(lines: list[str]) -> int:
    """The step of the last thermo line (numbers only, the first an integer step); 0: none."""
    for line in reversed(lines):
        words = line.split()
        if len(words) >= 2 and words[0].isdigit() and all(_NUMBER.match(w) for w in words):
            return int(words[0])
    return 0
