"""Fuzz, bounded in time: random LAMMPS command sequences around `fix plumed` (runs, `run 0`,
atoms deleted, created and renumbered, replicate, displacements, sorting, restarts through
write_restart/clear/read_restart, the fix redefined, minimisation, a changed time step).

Every case must end with exit 0 or a LAMMPS error message (no signal, no hang), PLUMED's
files must be whole lines, and a run after the atoms changed under the fix must be an
error, never exit 0 (a silent wrong bias). The seed is fixed: a failure prints its script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from chain_helpers import FREE_PARTICLES

CASES = 40
LENGTH = 7  # commands per case

PLUMED = """\
d: DISTANCE ATOMS=1,2
metad: METAD ARG=d PACE=10 HEIGHT=0.3 SIGMA=0.08 FILE=HILLS
PRINT ARG=d,metad.bias FILE=COLVAR STRIDE=10
"""
MD = "pair_style zero 2.5\npair_coeff * *\nneighbor 0.3 bin\nfix md all nve\ntimestep 0.005\nthermo 1000\n"
FIX = "fix p all plumed plumedfile plumed.dat outfile plumed.log\n"

# (commands, effect): "+1"/"-1" change the number of atoms under the fix, "fix" (re)defines
# it, "unfix" removes it, "run" steps it, "" does neither of these for sure
POOL = [
    ("run 20\n", "run"),
    ("run 0\n", "run"),
    ("run 5\n", "run"),
    ("delete_atoms random count 1 no all NULL {seed} compress no\n", "-1"),
    ("delete_atoms random count 1 no all NULL {seed} compress yes\n", "-1"),
    ("create_atoms 1 random 1 {seed} NULL overlap 0.5\n", "+1"),
    ("reset_atoms id sort yes\n", ""),  # may or may not renumber: crash check only
    ("replicate 1 1 2\n", ""),  # refused by LAMMPS while the fix stores per-atom data
    ("displace_atoms all random 0.05 0.05 0.05 {seed} units box\n", ""),
    ("velocity all scale 1.2\n", ""),
    ("atom_modify sort 1 0.4\n", ""),
    ("write_restart rs.fuzz\nclear\nread_restart rs.fuzz\n" + MD + FIX, "fix"),
    ("unfix p\n", "unfix"),
    (FIX, "fix"),
    ("minimize 0 0 5 10\n", "run"),
    ("timestep 0.004\n", ""),
    ("reset_timestep 0\n", ""),
]


def _case(rng: np.random.Generator) -> tuple[str, bool]:
    """A script and whether it runs the fix on another number of atoms than it was defined
    with (then LAMMPS must stop with an error). A deletion after a creation may remove the
    new atom again: only the net count is certain."""
    script = FREE_PARTICLES + "velocity all create 1.0 4 mom yes rot no\n" + MD + FIX
    defined, delta, must_fail = True, 0, False
    for _ in range(LENGTH):
        text, effect = POOL[int(rng.integers(len(POOL)))]
        script += text.format(seed=int(rng.integers(1, 10**6)))
        if effect in ("+1", "-1"):
            delta += int(effect)
        elif effect in ("fix", "unfix"):
            defined, delta = effect == "fix", 0
        elif effect == "run" and defined and delta != 0:
            must_fail = True
    return script + "run 10\n", must_fail or (defined and delta != 0)


def _check_whole_lines(path: Path, script: str) -> None:
    if not path.exists():
        return
    text = path.read_text()
    assert not text or text.endswith("\n"), f"{path.name} ends in a half line after\n{script}"
    widths = {len(line.split()) for line in text.splitlines() if line.strip() and not line.startswith("#")}
    assert len(widths) <= 1, f"{path.name}: lines of widths {widths} after\n{script}"


def test_random_command_sequences_around_the_fix(tmp_path):
    rng = np.random.default_rng(20)
    outcomes = {"ok": 0, "error": 0}
    for k in range(CASES):
        script, must_fail = _case(rng)
        case = tmp_path / f"case{k}"
        case.mkdir()
        (case / "plumed.dat").write_text(PLUMED)
        (case / "in.lmp").write_text(script)
        try:
            proc = subprocess.run(
                [str(Path(sys.prefix) / "bin" / "lmp"), "-in", "in.lmp", "-log", "none"],
                cwd=case,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            raise AssertionError(f"case {k} hung:\n{script}") from None
        out = proc.stdout + proc.stderr
        # the `lmp` wrapper exits with the binary's status: 1 is a LAMMPS error; a signal shows
        # as 256 - signal (245: SIGSEGV, 250: SIGABRT) or, for the wrapper itself, negative
        assert proc.returncode in (0, 1), f"case {k}: exit {proc.returncode}:\n{script}\n{out[-1500:]}"
        assert "Traceback" not in out, f"case {k}:\n{script}\n{out[-1500:]}"
        if proc.returncode != 0:
            assert "ERROR" in out, (
                f"case {k}: exit {proc.returncode} without an error message:\n{script}\n{out[-1500:]}"
            )
        assert not (must_fail and proc.returncode == 0), f"case {k}: ran on after the atoms changed:\n{script}"
        for name in ("HILLS", "COLVAR"):
            _check_whole_lines(case / name, script)
        outcomes["ok" if proc.returncode == 0 else "error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes  # the pool reaches both ends
