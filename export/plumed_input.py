"""``latentcv plumed-input model.pt``: a commented plumed.dat for well-tempered
metadynamics on one output of an exported latentcv model.

Every line carries a comment saying what it does and what to change. SIGMA comes from
the model's ``sigma_hint`` metadata (half the spread of the output in the melt, written
by ``latentcv export``) times ``2 × METAD_DEFAULTS.sigma_melt_stds``: SIGMA = 4 melt
standard deviations; HEIGHT defaults to ``METAD_DEFAULTS.height_kt`` = 2 kT in PLUMED's
energy unit (kJ/mol for models in nm/Å, natural units — kT = T — for reduced ``lj``
models). Both are measured defaults (:class:`~latentcv.cv_models.systems.MetadDefaults`).

A hint below 1/50 of the output's melt → crystal distance (:func:`cv_span`, from the
model's centroids) is degenerate: the file then carries a ``# REVIEW SIGMA:`` line and a
warning goes to stderr.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from latentcv.cv_models.systems import METAD_DEFAULTS

from .bias_settings import (
    BIAS_METHODS,
    budget_review,
    crossing_distance,
    opes_lines,
    steps_to_cross,
)
from .deploy import parse_floats, parse_names, read_metadata
from latentcv.cv_models.atomic_write import write_atomically

__all__ = [
    "PlumedInputOptions",
    "plumed_input",
    "write_plumed_input",
    "read_metadata",
    "cv_span",
    "sigma_review",
    "KB_KJ_PER_MOL_K",
    "SIGMA_REVIEW_FRACTION",
]

KB_KJ_PER_MOL_K = 0.0083144626  # Boltzmann constant in kJ/(mol K): PLUMED's default energy unit
SIGMA_REVIEW_FRACTION = 1.0 / 50.0  # a sigma_hint below this fraction of the melt->crystal distance is flagged


@dataclass
class PlumedInputOptions:
    """What ``latentcv plumed-input`` writes.

    Attributes:
        atoms: PLUMED atom list of the CV (e.g. "1-2048"); every atom of every molecule,
            molecule by molecule.
        cv: the output biased by METAD (a name of the model's ``output_names``).
        temp: temperature: K for nm/Å models, reduced (k_B = 1) for ``lj`` models.
        height: hill height in PLUMED's energy unit; None = ``METAD_DEFAULTS.height_kt`` kT.
        sigma: hill width in the CV's unit; None = ``METAD_DEFAULTS.sigma_melt_stds`` melt
            standard deviations from the model's ``sigma_hint`` (half a std).
        pace, biasfactor: METAD PACE (steps between hills) and BIASFACTOR.
        bias_stride: METAD STRIDE (multiple time stepping: the CV and its forces every
            ``bias_stride`` steps, scaled by it; 1 = every step); PACE and the PRINT stride
            must be multiples of it.
        stride: PRINT stride (steps).
        device, threads: LATENT_CV DEVICE and THREADS.
        engine: "lammps" (fix plumed) or "driver" (``plumed driver``: for ``lj`` models
            it needs ``UNITS NATURAL``, which LAMMPS ``units lj`` sets by itself).
        hills, colvar: output file names (``hills``: OPES's kernels file with ``method="opes"``).
        method: "metad" (well-tempered METAD) or "opes" (OPES_METAD, BARRIER = ``barrier_kt``).
        barrier_kt: the free energy in kT the bias must climb along the CV (OPES's BARRIER, where
            OPES caps its bias; the budget estimate); METAD_DEFAULTS.barrier_kt, docs/export.md.
        critical_size: molecules in the critical nucleus (the budget estimate for the counts).
        budget: MD steps you plan; the file is flagged (``# REVIEW BUDGET``) when WT-METAD's
            hills are estimated not to fill the barrier within it (docs/export.md).
    """

    atoms: str
    cv: str = "n_crystal"
    temp: Optional[float] = None
    height: Optional[float] = None
    sigma: Optional[float] = None
    pace: int = METAD_DEFAULTS.pace
    biasfactor: float = METAD_DEFAULTS.biasfactor
    bias_stride: int = METAD_DEFAULTS.bias_stride
    stride: int = 500
    device: str = "cpu"
    threads: int = 1
    engine: str = "lammps"
    hills: str = "HILLS"
    colvar: str = "COLVAR"
    method: str = "metad"
    barrier_kt: float = METAD_DEFAULTS.barrier_kt
    critical_size: Optional[float] = None
    budget: Optional[int] = None


def _atom_count(atoms: str) -> Optional[int]:
    """Number of atoms of a simple PLUMED list ("1-64", "1,2,5-8"); None if not simple."""
    n = 0
    for part in atoms.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part, re.ASCII)
        if not m:
            return None
        a, b = int(m.group(1)), int(m.group(2) or m.group(1))
        if b < a:
            raise ValueError(f"atom range {part!r} runs backwards; write it as {b}-{a}")
        if a < 1:
            raise ValueError(f"--atoms {atoms}: PLUMED numbers atoms from 1, not {a}")
        n += b - a + 1
    return n


# A value PLUMED reads as one word: no whitespace, '=', '#' (comment), braces, control characters.
_PLUMED_WORD = re.compile(r"[^\s=#{}\x00-\x1f\x7f]+")


def _check_word(option: str, value: object, what: str) -> None:
    """ValueError unless ``value`` is one non-empty PLUMED word (a file name, an atom list)."""
    if not isinstance(value, str) or not _PLUMED_WORD.fullmatch(value):
        raise ValueError(
            f"{option} {value!r}: {what} must be non-empty, without whitespace, '=', '#', braces or "
            "control characters (PLUMED would split or cut the line there)"
        )


def _check_number(option: str, value: object, low: float, strict: bool, integer: bool = False) -> None:
    """ValueError unless ``value`` is a finite number (an integer if asked) above ``low``
    (``strict``: ``> low``, else ``>= low``)."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    ok = ok_type and not isinstance(value, bool) and math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{option} {value!r}: must be {kind} {'>' if strict else '>='} {low:g}")


def cv_span(meta: Dict[str, str], name: str, n_molecules: Optional[int] = None) -> Optional[float]:
    """Distance from the melt to the crystal value of output ``name`` of a latentcv model:
    |c_crys,k − c_melt,k| for ``z<k>``, 1 for ``proj``, |dcrys(melt) − dcrys(crystal)| ≈ 0.99
    for ``dcrys``. None if unknown, for ``n_nucleus`` (~0 in the melt, up to M), and for the
    extensive count ``n_crystal``: its melt
    spread grows like sqrt(M) while the distance grows like M, so a fixed fraction would
    flag every large box (:func:`sigma_review` asks it for at least half a molecule)."""
    crys, melt = parse_floats(meta.get("crystal_centroid", "")), parse_floats(meta.get("melt_centroid", ""))
    m = re.fullmatch(r"z(\d+)", name)
    if m and int(m.group(1)) < min(len(crys), len(melt)):
        k = int(m.group(1))
        return abs(crys[k] - melt[k])
    if name == "proj":
        return 1.0
    if name == "dcrys":
        from .module import DCRYS_EPS2

        return math.sqrt(1.0 + DCRYS_EPS2) - math.sqrt(DCRYS_EPS2)
    return None


def sigma_review(sigma: float, span: Optional[float], cv: str) -> Optional[List[str]]:
    """The ``# REVIEW SIGMA:`` comment lines when the default SIGMA of ``cv`` (from its hint) is below
    ``SIGMA_REVIEW_FRACTION`` of its melt → crystal distance ``span``; None when it is not."""
    if cv in ("n_crystal", "n_nucleus"):
        if sigma >= 0.5:
            return None
        return [
            f"# REVIEW SIGMA: the default SIGMA {sigma:.3g} of cv.{cv} is below half a molecule:",
            "#   the count barely moves over the melt frames of the training data.",
            "#   CHANGE: raise SIGMA (--sigma, at least 0.5), or retrain with interface / partially crystalline "
            'frames ([data] molecule_labels = "ten_wolde").',
        ]
    if span is None or not span > 0 or sigma >= SIGMA_REVIEW_FRACTION * span:
        return None
    floor = SIGMA_REVIEW_FRACTION * span
    ratio = span / sigma if sigma > 0 else math.inf
    return [
        f"# REVIEW SIGMA: the default SIGMA {sigma:.3g} of cv.{cv} is 1/{ratio:.0f} of its melt->crystal distance "
        f"{span:.4g} (below 1/{1 / SIGMA_REVIEW_FRACTION:g}):",
        "#   the output barely moves over the melt frames of the training data, so hills this narrow would take very "
        "many strides to fill the melt basin.",
        f"#   CHANGE: raise SIGMA (--sigma, at least {floor:.3g} = 1/{1 / SIGMA_REVIEW_FRACTION:g} of the distance), "
        "or retrain with interface / partially crystalline frames so the spread is not degenerate.",
    ]


def _check_options(o: PlumedInputOptions, names: List[str], apm: int) -> Optional[int]:
    """The number of atoms ATOMS lists (None: not a simple list), or a ValueError naming the
    option to fix, what was given and what is valid: an output the model lacks, ATOMS that
    are not whole molecules of ``apm`` atoms, a temperature, height, width, pace, bias
    factor, stride or thread count out of range, a file name PLUMED would split, an
    unknown device or engine."""
    if o.cv not in names:
        raise ValueError(f"--cv {o.cv}: the model's outputs are {', '.join(names)}; pick one of them")
    _check_word("--atoms", o.atoms, "the PLUMED atom list")
    n = _atom_count(o.atoms)
    if n is not None and n % apm:
        raise ValueError(
            f"ATOMS={o.atoms} lists {n} atoms, not whole molecules of {apm} atoms (the model's "
            "atoms_per_molecule); list every atom of every molecule, molecule by molecule"
        )
    if o.temp is None:
        raise ValueError(
            "pass --temp T, the simulation temperature (K; reduced units for lj models): "
            f"METAD needs it for the well-tempered bias and HEIGHT defaults to {METAD_DEFAULTS.height_kt:g} kT"
        )
    _check_number("--temp", o.temp, 0.0, strict=True)
    for option, value in (("--height", o.height), ("--sigma", o.sigma)):
        if value is not None:
            _check_number(option, value, 0.0, strict=True)
    _check_number("--biasfactor", o.biasfactor, 1.0, strict=True)  # PLUMED: well-tempered needs > 1
    numbers = (
        ("--pace", o.pace),
        ("--print-stride", o.stride),
        ("--bias-stride", o.bias_stride),
        ("--threads", o.threads),
    )
    for option, value in numbers:
        _check_number(option, value, 1, strict=False, integer=True)
    for option, value in (("--pace", o.pace), ("--print-stride", o.stride)):
        if value % o.bias_stride:
            raise ValueError(
                f"{option} {value} is not a multiple of --bias-stride {o.bias_stride}: PLUMED evaluates the CV only "
                f"every {o.bias_stride} steps; make it a multiple (or pass --bias-stride 1)"
            )
    for option, value in (("--hills", o.hills), ("--colvar", o.colvar)):
        _check_word(option, value, "a PLUMED file name")
    if not isinstance(o.device, str) or not re.fullmatch(r"cpu|cuda|auto|cuda:[0-9]+", o.device):
        raise ValueError(f"--device {o.device!r}: one of cpu, cuda, cuda:N, auto")
    if o.engine not in ("lammps", "driver"):
        raise ValueError(f"--engine {o.engine!r}: must be 'lammps' or 'driver'")
    if o.method not in BIAS_METHODS:
        raise ValueError(f"--method {o.method!r}: one of {', '.join(BIAS_METHODS)}")
    _check_number("--barrier", o.barrier_kt, 0.0, strict=True)
    if o.critical_size is not None:
        _check_number("--critical-size", o.critical_size, 0.0, strict=True)
    if o.budget is not None:
        _check_number("--budget", o.budget, 1, strict=False, integer=True)
    if o.hills == o.colvar:
        raise ValueError(f"--hills and --colvar both name {o.hills}: METAD and PRINT need two files")
    return n


def _sigma(
    meta: Dict[str, str], o: PlumedInputOptions, names: List[str], molecules: Optional[int]
) -> Tuple[float, str]:
    """SIGMA of the biased output and where it comes from: ``--sigma``, else
    ``METAD_DEFAULTS.sigma_melt_stds`` melt stds from the model's sigma_hint (half a std),
    scaled by sqrt(molecules / hint molecules) for an extensive count."""
    if o.sigma is not None:
        return o.sigma, "given with --sigma"
    stds = METAD_DEFAULTS.sigma_melt_stds
    source = (
        f"{stds:g} x the std of this output over the melt frames of the training data "
        "(the model's sigma_hint is half of it)"
    )
    hints = parse_floats(meta.get("sigma_hint", ""))
    if len(hints) != len(names):
        raise ValueError(
            "the model has no sigma_hint metadata (it was not written by `latentcv export`); "
            "pass --sigma S, about half the spread of the CV in the liquid"
        )
    sigma = 2.0 * stds * hints[names.index(o.cv)]
    extensive = parse_names(meta.get("extensive_outputs", ""))
    hint_molecules = float(meta.get("sigma_hint_molecules", "0") or 0)
    if o.cv in extensive and molecules is not None and hint_molecules > 0:
        # the spread of an extensive count grows like sqrt(M)
        sigma *= math.sqrt(molecules / hint_molecules)
        source += f", scaled by sqrt({molecules}/{hint_molecules:g} molecules) for this extensive count"
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(
            f"the model's sigma_hint of {o.cv} gives SIGMA = {sigma:g}, not a usable hill width; "
            "pass --sigma S, about half the spread of the CV in the liquid"
        )
    return sigma, source


def _unit_lines(unit: str, engine: str) -> List[str]:
    """The plumed.dat lines on units: natural units for a reduced (lj) model, else a note."""
    if unit != "lj":
        return [
            f"# model in {unit}: any LAMMPS units style with lengths works (the action converts); "
            "energies below in kJ/mol"
        ]
    if engine == "driver":
        return [
            "UNITS NATURAL  # reduced (lj) model: PLUMED must use natural units (LAMMPS `units lj` sets them itself)"
        ]
    return [
        "# reduced (lj) model: run LAMMPS with `units lj` (fix plumed then puts PLUMED in natural units);",
        "# for `plumed driver` add the line: UNITS NATURAL",
    ]


def _bias_lines(
    o: PlumedInputOptions,
    sigma: float,
    sigma_src: str,
    height: float,
    kt: float,
    review: Optional[List[str]],
    span: Optional[float],
    energy: str,
    temp_unit: str,
    warn: Optional[Callable[[str], None]],
) -> Tuple[str, List[str]]:
    """(the bias's label, its commented lines): WT-METAD with the budget estimate, or OPES_METAD."""
    if o.method == "opes":
        lines = [f"# OPES_METAD on cv.{o.cv} (--method opes).", *(review or [])]
        lines += _stride_lines(o.bias_stride)
        kernels = "KERNELS" if o.hills == "HILLS" else o.hills  # OPES writes kernels, not hills
        return "opes", lines + opes_lines(
            "opes", f"cv.{o.cv}", sigma, o.barrier_kt * kt, o.pace, o.temp, kernels, o.bias_stride
        )
    distance, what = crossing_distance(o.cv, span, o.critical_size)
    if distance is None:
        estimate = [f"#   Budget check: {what} (docs/export.md, 'Will the hills get there?')."]
    else:
        steps = steps_to_cross(o.barrier_kt, distance, sigma, height / kt, o.pace, o.biasfactor)
        estimate = budget_review(steps, o.budget, what, o.barrier_kt)
        if len(estimate) > 1:
            (warn or (lambda msg: print(msg, file=sys.stderr)))(
                f"latentcv plumed-input: warning: ~{steps:.2g} steps to fill a {o.barrier_kt:g} kT barrier, more than "
                f"--budget {o.budget} (see '# REVIEW BUDGET' in the file)."
            )
    return "metad", [
        f"# Well-tempered metadynamics on cv.{o.cv}.",
        *(review or []),
        f"#   SIGMA={sigma:.6g}: hill width in the CV's unit, from {sigma_src}.",
        f"#   HEIGHT={height:.6g}: hill height in {energy}; "
        f"{f'{METAD_DEFAULTS.height_kt:g} kT' if o.height is None else 'given with --height'} "
        f"at T={o.temp:g} (1-4 kT is usual; 2 kT and SIGMA of 4 melt stds measured in docs/results.md).",
        f"#   PACE={o.pace}: steps between hills. BIASFACTOR={o.biasfactor:g}: well-tempered gamma (30-50 is usual for nucleation).",
        *_stride_lines(o.bias_stride),
        *estimate,
        f"#   TEMP={o.temp:g}: simulation temperature, {temp_unit} (CHANGE to your thermostat's). FILE: the hills written.",
        f"metad: METAD ARG=cv.{o.cv} SIGMA={sigma:.6g} HEIGHT={height:.6g} PACE={o.pace} BIASFACTOR={o.biasfactor:g} "
        f"TEMP={o.temp:g} FILE={o.hills}" + (f" STRIDE={o.bias_stride}" if o.bias_stride > 1 else ""),
    ]


def _stride_lines(bias_stride: int) -> List[str]:
    """The plumed.dat comment on METAD's STRIDE (multiple time stepping)."""
    if bias_stride == 1:
        return ["#   No STRIDE: the CV and its forces every step (--bias-stride 1)."]
    return [
        f"#   STRIDE={bias_stride}: multiple time stepping: the CV and its forces every {bias_stride} steps, applied "
        f"{bias_stride}x as an impulse (~{bias_stride}x cheaper).",
        f"#   Keep {bias_stride} x timestep below a tenth of your system's fastest vibration period (docs/export.md, "
        "'Bias STRIDE'); CHANGE to 1 for forces every step.",
    ]


def plumed_input(
    model: str | os.PathLike,
    options: PlumedInputOptions,
    plugin: Optional[str] = None,
    warn: Optional[Callable[[str], None]] = None,
) -> str:
    """The text of a commented plumed.dat for ``model`` (checked against its metadata).

    ``warn`` receives the warnings (a degenerate sigma hint); default: print to stderr."""
    from latentcv.cv_models.native import paths

    meta = read_metadata(model)
    o = options
    _check_word("the model path", str(Path(model).resolve()), "the model's absolute path (MODEL=)")
    names: List[str] = parse_names(meta.get("output_names", ""))
    unit = meta.get("length_unit", "")
    apm = int(meta.get("atoms_per_molecule", "1"))
    n = _check_options(o, names, apm)
    natural = unit == "lj"
    kt = o.temp if natural else KB_KJ_PER_MOL_K * o.temp
    height = METAD_DEFAULTS.height_kt * kt if o.height is None else o.height
    sigma, sigma_src = _sigma(meta, o, names, None if n is None else n // apm)
    span = cv_span(meta, o.cv, None if n is None else n // apm)
    review = None
    if o.sigma is None:
        review = sigma_review(sigma, span, o.cv)
        if review:
            (warn or (lambda msg: print(msg, file=sys.stderr)))(
                f"latentcv plumed-input: warning: {review[0][2:]} Review SIGMA (see '# REVIEW SIGMA' in the file): "
                "raise it with --sigma, or retrain with interface frames."
            )
    energy = "natural units (k_B = 1, energies in epsilon)" if natural else "kJ/mol"
    plugin = plugin or str(paths.plumed_plugin_path())
    temp_unit = "reduced (k_B T / epsilon)" if natural else "K"
    label, bias = _bias_lines(o, sigma, sigma_src, height, kt, review, span, energy, temp_unit, warn)
    lines = [
        f"# plumed.dat written by `latentcv plumed-input` for {Path(model).resolve()}",
        f"# model: {meta.get('name', '')}, outputs {','.join(names)}, length unit {unit}, dtype {meta.get('dtype', '')},",
        f"# {apm} atom(s) per molecule (species pattern [{meta.get('species', '')}]), cutoff {meta.get('cutoff', '')} {unit}.",
        f"# Biases ONE output with {'OPES' if o.method == 'opes' else 'well-tempered metadynamics'}; review every "
        "value marked CHANGE before production.",
        "",
    ]
    lines += _unit_lines(unit, o.engine)
    lines += [
        f"LOAD FILE={plugin}  # the latentcv PLUMED action (path: `latentcv paths`)",
        "",
        "# The learned CV. ATOMS: every atom of every molecule, molecule by molecule, in the model's atom order",
        "# (CHANGE if your system differs). DEVICE: cpu, cuda or auto. THREADS: torch CPU threads (keep small).",
        f"cv: LATENT_CV MODEL={Path(model).resolve()} ATOMS={o.atoms} DEVICE={o.device} THREADS={o.threads}",
        "",
        *bias,
        "",
        f"# Every output of the model and the bias, every {o.stride} steps.",
        f"PRINT ARG=cv.*,{label}.bias STRIDE={o.stride} FILE={o.colvar}",
        "",
    ]
    return "\n".join(lines)


def write_plumed_input(
    model: str | os.PathLike,
    out: str | os.PathLike,
    options: PlumedInputOptions,
    warn: Optional[Callable[[str], None]] = None,
) -> Path:
    """Write :func:`plumed_input` to ``out``; returns the path."""
    text = plumed_input(model, options, warn=warn)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out, text.encode(), "plumed input")
    return out
