"""PLUMED's column files (COLVAR, HILLS, DERIV, ``sum_hills``' fes.dat, ``latentcv eval``'s
output): the one reader.

Such a file starts with ``#! FIELDS name ...``; other ``#`` lines (``#! SET ...``, a
restarted file's repeated header) are skipped; every other non-blank line is one row of
numbers, one per field.
"""

from __future__ import annotations

import os
from typing import List, NamedTuple

import numpy as np

__all__ = ["PlumedTable", "read_plumed_table"]


class PlumedTable(NamedTuple):
    """A PLUMED column file: ``fields, data = read_plumed_table(path)``.

    Attributes:
        fields: the column names of the ``#! FIELDS`` line.
        data: [rows, len(fields)] float64.
    """

    fields: List[str]
    data: np.ndarray

    def column(self, name: str) -> np.ndarray:
        """The column ``name`` ([rows]); KeyError naming the columns there are."""
        if name not in self.fields:
            raise KeyError(f"no column {name!r} in this PLUMED file: its columns are {', '.join(self.fields)}")
        return self.data[:, self.fields.index(name)]


def read_plumed_table(path: str | os.PathLike) -> PlumedTable:
    """Read a PLUMED column file. ValueError (naming the file and line) for a file without
    a ``#! FIELDS`` line, a second header with other fields, or a row of another width."""
    fields: List[str] | None = None
    rows: List[List[float]] = []
    with open(path) as fh:
        for number, line in enumerate(fh, 1):
            words = line.split()
            if not words:
                continue
            if words[:2] == ["#!", "FIELDS"]:
                if fields is not None and words[2:] != fields:
                    raise ValueError(f"{path}:{number}: a second FIELDS header with other columns")
                fields = words[2:]
            elif not words[0].startswith("#"):
                if fields is None or len(words) != len(fields):
                    raise ValueError(
                        f"{path}:{number}: {len(words)} numbers where the FIELDS line names "
                        f"{'none' if fields is None else len(fields)}: not a complete PLUMED column file"
                    )
                rows.append([float(w) for w in words])
    if fields is None:
        raise ValueError(f"{path}: no '#! FIELDS' line: not a PLUMED column file (COLVAR, HILLS, ...)")
    return PlumedTable(fields, np.array(rows, dtype=np.float64).reshape(len(rows), len(fields)))
