"""Multiple walkers: K MD processes that build one metadynamics bias together.

``latentcv walkers plumed.dat K`` writes ``plumed.0.dat`` ... ``plumed.{K-1}.dat``: the
same input with PLUMED's file-based multiple walkers on every METAD line (``WALKERS_N``,
``WALKERS_ID``, ``WALKERS_DIR``, ``WALKERS_RSTRIDE``: walker k writes its hills to
``HILLS.k`` in the shared folder and reads the others' every RSTRIDE steps) and each
PRINT's FILE suffixed by the walker, so the walkers can share one working folder. Then::

    for k in 0 1 2 3; do lmp -in in.lmp -var walker $k & done      # fix ... plumedfile plumed.${walker}.dat

No MPI is involved: the walkers may run on different nodes that share a file system.
"""

from __future__ import annotations

import re
from pathlib import Path

_ACTION = re.compile(r"^\s*(?:(\S+):\s+)?(\S+)")


def walker_inputs(plumed_dat: str | Path, walkers: int, shared_dir: str = ".", rstride: int = 100) -> list[Path]:
    """Write one plumed input per walker next to ``plumed_dat``; returns their paths.

    Raises ValueError when the input has no METAD (nothing to share) or already sets
    WALKERS_* keywords."""
    if walkers < 2:
        raise ValueError(f"walkers: give at least 2 walkers, not {walkers}")
    if rstride < 1:
        raise ValueError(f"walkers: WALKERS_RSTRIDE must be >= 1, not {rstride}")
    src = Path(plumed_dat)
    lines = src.read_text().splitlines()
    metad = [
        i for i, line in enumerate(lines) if (m := _ACTION.match(line.split("#")[0])) and m.group(2).upper() == "METAD"
    ]
    if not metad:
        raise ValueError(f"walkers: {src} has no METAD line: there is no bias for the walkers to share")
    if any("WALKERS_" in line.upper() for line in lines):
        raise ValueError(f"walkers: {src} already sets WALKERS_* keywords; give the single-walker input")
    out = []
    for k in range(walkers):
        new = []
        for i, line in enumerate(lines):
            body, hash_, comment = line.partition("#")
            if i in metad:
                body = (
                    f"{body.rstrip()} WALKERS_N={walkers} WALKERS_ID={k} WALKERS_DIR={shared_dir} "
                    f"WALKERS_RSTRIDE={rstride} "
                )
            elif (m := _ACTION.match(body)) and m.group(2).upper() == "PRINT":
                body = re.sub(r"(FILE=)(\S+)", lambda f: f"{f.group(1)}{f.group(2)}.{k}", body)
            new.append(body + hash_ + comment)
        path = src.with_name(f"{src.stem}.{k}{src.suffix}")
        path.write_text("\n".join(new) + "\n")
        out.append(path)
    return out
