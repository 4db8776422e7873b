"""Fuzz, bounded in time, of what users hand latentcv (issue 20): random config files,
random LAMMPS dumps, random ``latentcv plumed-input`` arguments (tests/test_fuzz.py fuzzes
the C++ side). Over 400 lines because the three fuzzers share their mutators and checks
(one file keeps them beside each other). Every case must end in success or in a documented error (ConfigError /
ValueError; the CLI: exit 2 and one line): never another exception (IndexError,
TypeError, KeyError ... = a traceback), a hang, or a silently wrong result (a non-finite
frame read, a frame of another atom count, a bad value accepted, a negative HEIGHT
written; a hang: SIGALRM after TIME_LIMIT_S). Seeds are fixed; a failure prints the
case, which replays with the same seed.
About 5 s in all. Over 400 lines because it holds three fuzzers, each with its generator
of damaged inputs and its oracle of what may come out."""

from __future__ import annotations

import copy
import json
import math
import re
import signal
from typing import Any

import numpy as np
import pytest

from export_helpers import save_model_with_hints
from latentcv.cv_models.app.cli import main
from latentcv.cv_models.config import ConfigError, load_config
from latentcv.cv_models.data import read_dataset, read_lammps_dump, write_lammps_dump
from latentcv.cv_models.data.readers import check_trajectory_table
from latentcv.cv_models.synthetic import synthetic_dataset
from latentcv.export.plumed_input import PlumedInputOptions, plumed_input

TIME_LIMIT_S = 120  # per test; each needs a few seconds
CONFIG_CASES = 1000
DUMP_CASES = 1500
PLUMED_INPUT_CASES = 600


class FuzzHang(Exception):
    """Raised in the running case when a fuzz test passes TIME_LIMIT_S (the case is printed)."""


@pytest.fixture(autouse=True)
def _time_limit():
    """A hang is a failure: SIGALRM raises FuzzHang inside the case that hangs."""

    def hang(signum, frame):
        raise FuzzHang(f"over {TIME_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(TIME_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _one_error_line(err: str, command: str) -> bool:
    """The CLI's error: one line ``latentcv <command>: error: ...`` (argparse: its usage and error)."""
    lines = err.strip().splitlines()
    if lines and lines[0].startswith("usage: latentcv"):
        return "error:" in lines[-1]
    return len(lines) == 1 and lines[0].startswith(f"latentcv {command}: error: ")


# ----------------------------------------------------------------------------- configs

BASE_CONFIG: dict[str, Any] = {
    "data": {
        "trajectories": [
            {"path": "crystal.dump", "label": "crystal", "data_file": "crystal.data", "stride": 1, "units": "lj"},
            {
                "path": "melt.xtc",
                "top": "melt.pdb",
                "label": 0,
                "molecules": "residues",
                "length_unit": "nm",
                "species_map": {"C": 0},
            },
        ],
        "n_blocks": 5,
        "val_fraction": 0.2,
        "molecule_labels": "frame",
        "label_cutoff": 0.0,
    },
    "model": {
        "cutoff": 1.5,
        "r_on": 1.2,
        "hidden": 8,
        "heads": 2,
        "stage1_layer": "egnn",
        "moment_degrees": [6],
        "bond_order": True,
        "dtype": "float64",
        "species": [0],
    },
    "training": {
        "epochs": 3,
        "lr": 0.003,
        "batch_size": 4,
        "device": "cpu",
        "output_dir": "run",
        "seed": 1,
        "resume": True,
        "weight_decay": 1e-5,
    },
}
SYNTHETIC = {"atoms_per_molecule": 2, "n_cells": 2, "density": 1.0, "noise": 0.05, "triclinic": False}
ODD_VALUES: list[Any] = [
    0,
    -1,
    1,
    2.5,
    -0.5,
    1e308,
    float("nan"),
    float("inf"),
    -float("inf"),
    "",
    "x",
    "crystal",
    "auto",
    True,
    False,
    [],
    [1, "a"],
    [6, 4],
    {},
    {"a": 1},
    2**40,
    "1-64",
    "ÿ",
]


def _wrong_type(value: Any, rng: np.random.Generator) -> Any:
    """A value of a type the key of ``value`` never takes (ints: a float or a string ...)."""
    if isinstance(value, bool):
        pool = [1, "true", [True]]
    elif isinstance(value, int):
        pool = [2.5, "3", [3], {"n": 3}, True, float("nan")]
    elif isinstance(value, float):
        pool = ["1.5", [1.5], {"x": 1.0}, True, float("nan"), float("inf")]
    elif isinstance(value, str):
        pool = [[value], {"v": value}, 1.5, False]
    elif isinstance(value, list):
        pool = ["6", 6, {"l": 6}, [{"l": 6}], ["x"]]
    else:
        pool = ["x", 1, [1]]
    return pool[int(rng.integers(len(pool)))]


def _leaves(tree: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every value (tables' entries and list items) under ``tree``."""
    out = []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        out.append(path + (key,))
        out += _leaves(value, path + (key,))
    return out


def _tables(tree: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every table (dict) under ``tree``, ``tree`` itself included."""
    out = [path] if isinstance(tree, dict) else []
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
    for key, value in items:
        out += _tables(value, path + (key,))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _mutate(cfg: dict, rng: np.random.Generator) -> tuple[str, bool]:
    """Change ``cfg`` in place at a random depth; returns what was done and whether the
    result is certainly invalid (an unknown key, a value of the wrong type)."""
    kind = rng.choice(["unknown", "wrong_type", "odd_value", "delete"], p=[0.25, 0.3, 0.3, 0.15])
    if kind == "unknown":
        where = _tables(cfg)[int(rng.integers(len(_tables(cfg))))]
        name = str(rng.choice(["colour", "hiden", "lable", "n_cels", "Path", "x.y", "", "ÿ"]))
        _get(cfg, where)[name] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
        return f"unknown key {where + (name,)}", "species_map" not in where  # its keys are element names
    leaves = _leaves(cfg)
    where = leaves[int(rng.integers(len(leaves)))]
    parent, key = _get(cfg, where[:-1]), where[-1]
    if kind == "delete":
        parent.pop(key) if isinstance(parent, dict) else parent.pop(key)
        return f"deleted {where}", False
    old = parent[key]
    if kind == "wrong_type":
        # a label or molecules entry takes ints and strings, species_map keys are free, list items of mixed lists
        loose = where[-1] in ("label", "molecules") or "species_map" in where or isinstance(key, int)
        parent[key] = _wrong_type(old, rng)
        return f"wrong type {where} = {parent[key]!r} (was {old!r})", not loose and not isinstance(old, (dict, list))
    parent[key] = ODD_VALUES[int(rng.integers(len(ODD_VALUES)))]
    return f"odd value {where} = {parent[key]!r}", False


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"


def _to_toml(cfg: dict) -> str:
    """TOML text of a config: top-level scalars first, then one table per dict."""
    head = [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    body = []
    for k, v in cfg.items():
        if isinstance(v, dict):
            body.append(f"[{json.dumps(str(k))}]")
            body += [f"{json.dumps(str(kk))} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(head + body) + "\n"


def _check_loaded(cfg) -> None:
    """What a config that loads must hold: finite numbers, known keys, valid tables."""
    for section in (cfg.data, cfg.model, cfg.training):
        for key, value in vars(section).items():
            assert not isinstance(value, float) or math.isfinite(value), (key, value)
    for k, table in enumerate(cfg.data.trajectories):
        check_trajectory_table(table, f"data.trajectories[{k}]")
    cfg.validate()


def test_random_config_files_end_in_a_config_error_or_a_valid_config(tmp_path, capsys):
    rng = np.random.default_rng(2020)
    outcomes = {"ok": 0, "error": 0}
    for case in range(CONFIG_CASES):
        cfg = copy.deepcopy(BASE_CONFIG)
        if rng.random() < 0.3:
            cfg["data"] = {"synthetic": dict(SYNTHETIC), "n_blocks": 3}
        changes = [_mutate(cfg, rng) for _ in range(int(rng.integers(0, 3)))]
        invalid = any(bad for _, bad in changes)
        path = tmp_path / f"c{case}.{'json' if rng.random() < 0.3 else 'toml'}"
        text = json.dumps(cfg) if path.suffix == ".json" else _to_toml(cfg)
        if rng.random() < 0.1:  # a file cut short or with a stray byte
            cut = int(rng.integers(len(text)))
            text = text[:cut] + ("" if rng.random() < 0.5 else '\x00]="')
            changes.append((f"text cut at {cut}", False))
        path.write_text(text)
        what = f"case {case}: {changes}\n{text}"
        try:
            loaded = load_config(path)
        except ConfigError:
            outcomes["error"] += 1
            if case % 4 == 0:  # the CLI: exit 2, one line (refused before any frame is read)
                assert main(["train", str(path)]) == 2, what
                assert _one_error_line(capsys.readouterr().err, "train"), what
            continue
        except Exception as exc:  # noqa: BLE001 -- the fuzz reports every other exception
            pytest.fail(f"{type(exc).__name__}: {exc}\n{what}")
        assert not invalid, f"accepted an invalid config\n{what}"
        _check_loaded(loaded)
        outcomes["ok"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 100, outcomes


# ----------------------------------------------------------------------------- dumps

N_FRAMES, N_ATOMS = 3, 32
FRAME_LINES = 9 + N_ATOMS  # header + atom rows


@pytest.fixture(scope="module")
def reference_dump(tmp_path_factory) -> tuple[list[str], list]:
    """The lines of a clean 3-frame dump (32 atoms: id mol type x y z) and its frames."""
    path = tmp_path_factory.mktemp("fuzz_dump") / "ref.dump"
    frames = synthetic_dataset(
        atoms_per_molecule=1, n_cells=2, frames_per_trajectory=N_FRAMES, trajectories_per_phase=1
    )[:N_FRAMES]
    write_lammps_dump(path, frames)
    return path.read_text().splitlines(keepends=True), read_lammps_dump(path)


def _row(rng: np.random.Generator) -> tuple[int, int]:
    """(line index, frame) of a random atom row."""
    frame = int(rng.integers(N_FRAMES))
    return frame * FRAME_LINES + 9 + int(rng.integers(N_ATOMS)), frame


def _set(line: str, column: int, token: str) -> str:
    tokens = line.split()
    tokens[column] = token
    return " ".join(tokens) + "\n"


def _dump_mutation(lines: list[str], rng: np.random.Generator) -> tuple[str, str, str]:
    """A random damage to the dump: (text, what was done, expected) with expected "error"
    (must be refused), "prefix" (only whole frames may be read, equal to the reference's)
    or "any" (either; what is read must still be consistent). A little over 60 lines: one
    short branch per kind of damage, read side by side."""
    lines = list(lines)
    kind = str(
        rng.choice(
            [
                "truncate",
                "non_finite",
                "non_numeric",
                "integer_column",
                "swap",
                "delete",
                "duplicate",
                "fewer_atoms",
                "count",
                "garbage",
                "empty",
            ]
        )
    )
    k, frame = _row(rng)
    if kind == "truncate":
        text = "".join(lines)
        cut = int(rng.integers(len(text)))
        return text[:cut], f"truncated at byte {cut}", "prefix"
    if kind == "non_finite":
        token = str(rng.choice(["nan", "inf", "-inf", "1e999", "NaN", "-1e400"]))
        lines[k] = _set(lines[k], int(rng.integers(3, 6)), token)
        return "".join(lines), f"line {k + 1}: {token}", "error"
    if kind == "non_numeric":
        token = str(rng.choice(["abc", "1.2.3", "0x1p3", "--1", "1e", "ÿ", "1,5"]))
        lines[k] = _set(lines[k], int(rng.integers(0, 6)), token)
        return "".join(lines), f"line {k + 1}: {token!r}", "error"
    if kind == "integer_column":
        token = str(rng.choice(["1.5", "nan", "-3", "0", "99999", "1e3", "2"]))
        lines[k] = _set(lines[k], int(rng.integers(0, 3)), token)
        return "".join(lines), f"line {k + 1}: id/mol/type {token}", "any"
    if kind in ("swap", "delete", "duplicate"):
        i, j = (int(x) for x in rng.integers(len(lines), size=2))
        if kind == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "delete":
            del lines[i]
        else:
            lines.insert(j, lines[i])
        return "".join(lines), f"{kind} lines {i + 1}, {j + 1}", "any"
    if kind == "fewer_atoms":  # one atom less in a later frame, its count adjusted: frames differ
        frame = 1 + int(rng.integers(N_FRAMES - 1))
        start = frame * FRAME_LINES
        lines[start + 3] = f"{N_ATOMS - 1}\n"
        del lines[start + 9 + int(rng.integers(N_ATOMS))]
        return "".join(lines), f"frame {frame} without one atom", "error"
    if kind == "count":
        token = str(rng.choice(["0", "-1", "31", "33", "x", "1e9", str(10**12), "32 32"]))
        lines[frame * FRAME_LINES + 3] = token + "\n"
        return "".join(lines), f"frame {frame}: NUMBER OF ATOMS {token}", "error"
    if kind == "garbage":
        text = "".join(lines)
        at = int(rng.integers(len(text)))
        junk = rng.bytes(int(rng.integers(1, 8))).decode("latin-1")
        return text[:at] + junk + text[at:], f"{junk!r} inserted at byte {at}", "any"
    return "", "empty file", "any"


def _check_frames(frames: list, expected: str, reference: list, text: str, lines: list[str]) -> None:
    """What frames read from a damaged dump must satisfy."""
    assert expected != "error", "accepted"
    for f in frames:
        assert np.isfinite(f.positions).all() and np.isfinite(f.cell).all() and np.linalg.det(f.cell) > 0
        assert f.positions.shape == (N_ATOMS, 3) and (f.species >= 0).all()
    assert len({f.n_atoms for f in frames}) <= 1
    if expected == "prefix":
        whole = sum(len(text) >= len("".join(lines[: (k + 1) * FRAME_LINES])) for k in range(N_FRAMES))
        assert len(frames) == whole, f"{len(frames)} frames read from {whole} whole ones"
        for f, ref in zip(frames, reference):
            assert np.array_equal(f.positions, ref.positions)


def test_random_damaged_dumps_are_refused_or_read_consistently(tmp_path, reference_dump):
    lines, reference = reference_dump
    rng = np.random.default_rng(4242)
    outcomes = {"ok": 0, "error": 0}
    path = tmp_path / "t.dump"
    for case in range(DUMP_CASES):
        text, what, expected = _dump_mutation(lines, rng)
        path.write_bytes(text.encode("latin-1" if rng.random() < 0.2 else "utf-8", errors="replace"))
        how = f"case {case}: {what} (expected {expected})"
        try:
            if case % 3:
                frames = read_lammps_dump(path)
            else:  # through the config's route: a table, a label, 0 frames is an error
                frames = read_dataset([{"path": str(path), "label": "crystal"}]).frames
        except ValueError as exc:
            assert str(path) in str(exc), f"{how}: the error does not name the file: {exc}"
            outcomes["error"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 -- the fuzz reports every other exception
            pytest.fail(f"{how}: {type(exc).__name__}: {exc}")
        try:
            _check_frames(frames, expected, reference, text, lines)
        except AssertionError as exc:
            pytest.fail(f"{how}: silently wrong frames: {exc}")
        outcomes["ok"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 100, outcomes


# ----------------------------------------------------------------------------- plumed-input

# option: [(value, valid?)]; a case uses a random subset (the model: molecules of 2 atoms)
PLUMED_OPTIONS: dict[str, list[tuple[str, bool]]] = {
    "--natoms": [
        ("64", True),
        ("32", True),
        ("63", False),
        ("-5", False),
        ("0", False),
        ("abc", False),
        ("1e3", False),
    ],
    "--atoms": [
        ("1-64", True),
        ("1-32,33-64", True),
        ("0-63", False),
        ("64-1", False),
        ("1-64 65", False),
        ("", False),
        ("1-63", False),
    ],
    "--temp": [
        ("0.6", True),
        ("300", True),
        ("1e-300", True),
        ("0", False),
        ("-1", False),
        ("inf", False),
        ("nan", False),
        ("abc", False),
    ],
    "--height": [("1.5", True), ("0", False), ("-1", False), ("nan", False), ("inf", False)],
    "--sigma": [("0.2", True), ("1e-9", True), ("0", False), ("-0.1", False), ("-inf", False), ("nan", False)],
    # valid PACE and PRINT strides are multiples of every valid --bias-stride (1, 5: the default)
    "--pace": [("10", True), ("500", True), ("0", False), ("-1", False), ("2.5", False)],
    "--bias-stride": [("1", True), ("5", True), ("0", False), ("-5", False), ("2.5", False)],
    "--biasfactor": [
        ("30", True),
        ("1.0001", True),
        ("1", False),
        ("0.5", False),
        ("inf", False),
        ("nan", False),
        ("-10", False),
    ],
    "--stride": [("10", True), ("250", True), ("0", False), ("-2", False)],
    "--threads": [("1", True), ("4", True), ("0", False), ("-1", False)],
    "--device": [
        ("cpu", True),
        ("cuda", True),
        ("cuda:1", True),
        ("auto", True),
        ("gpu", False),
        ("", False),
        ("cuda:x", False),
        ("cpu DEVICE=x", False),
    ],
    "--engine": [("lammps", True), ("driver", True), ("gromacs", False)],
    "--hills": [
        ("HILLS", True),
        ("out/H.1", True),
        ("H 1", False),
        ("", False),
        ("a=b", False),
        ("x#y", False),
        ("H\n", False),
        ("{x}", False),
        ("H\t", False),
    ],
    "--colvar": [("COLVAR", True), ("C.dat", True), ("C V", False), ("C=", False)],
    "--cv": [("n_crystal", True), ("proj", True), ("z0", True), ("q6", False), ("", False)],
}
METAD = re.compile(
    r"^metad: METAD ARG=cv\.(\S+) SIGMA=(\S+) HEIGHT=(\S+) PACE=(\S+) BIASFACTOR=(\S+) TEMP=(\S+) "
    r"FILE=(\S+)(?: STRIDE=([1-9][0-9]*))?$"
)


def _random_arguments(rng: np.random.Generator) -> tuple[list[str], bool]:
    """Random ``plumed-input`` options and whether all of them (and their mix) are valid."""
    args, valid, chosen = [], True, {}
    for option, pool in PLUMED_OPTIONS.items():
        p = {"--natoms": 0.7, "--temp": 0.85, "--atoms": 0.25}.get(option, 0.3)
        if rng.random() < p:
            good = [v for v in pool if v[1]] if rng.random() < 0.75 else [v for v in pool if not v[1]]
            value, ok = good[int(rng.integers(len(good)))]
            args.append(f"{option}={value}")
            valid &= ok
            chosen[option] = value
    valid &= ("--natoms" in chosen) != ("--atoms" in chosen) and "--temp" in chosen
    valid &= chosen.get("--hills", "HILLS") != chosen.get("--colvar", "COLVAR")
    return args, valid


def _check_written(text: str, args: list[str]) -> None:
    """The plumed.dat of valid options: every METAD number in range, one word per value."""
    metad = [METAD.match(line) for line in text.splitlines() if line.startswith("metad:")]
    assert len(metad) == 1 and metad[0], text
    _, sigma, height, pace, biasfactor, temp, _, stride = metad[0].groups()
    assert 0 < float(sigma) < math.inf and 0 < float(height) < math.inf and 0 < float(temp) < math.inf
    assert int(pace) >= 1 and 1 < float(biasfactor) < math.inf
    assert stride is None or int(pace) % int(stride) == 0, text
    cv = next(line for line in text.splitlines() if line.startswith("cv: LATENT_CV"))
    assert re.fullmatch(r"cv: LATENT_CV MODEL=\S+ ATOMS=\S+ DEVICE=\S+ THREADS=[1-9][0-9]*", cv), cv
    assert re.fullmatch(
        r"PRINT ARG=cv\.\*,metad\.bias STRIDE=[1-9][0-9]* FILE=\S+",
        next(line for line in text.splitlines() if line.startswith("PRINT")),
    ), args


def test_random_plumed_input_arguments(tmp_path, capsys):
    model = save_model_with_hints(tmp_path / "m.pt", sigma_hint=[0.1, 0.1, 0.1, 0.1, 2.0, 1.0], atoms_per_molecule=2)
    rng = np.random.default_rng(99)
    out = tmp_path / "plumed.dat"
    outcomes = {"ok": 0, "error": 0}
    for case in range(PLUMED_INPUT_CASES):
        args, valid = _random_arguments(rng)
        out.unlink(missing_ok=True)
        argv = ["plumed-input", str(model), "--out", str(out), *args]
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: a value of the wrong type ("abc" for an int)
            rc = exc.code
        except Exception as exc:  # noqa: BLE001 -- the fuzz reports every other exception
            pytest.fail(f"case {case} {args}: {type(exc).__name__}: {exc}")
        err = capsys.readouterr().err
        how = f"case {case} {args} (valid: {valid}) -> {rc}\n{err}"
        assert rc in (0, 2), how
        if rc == 2:
            assert not valid and not out.exists() and _one_error_line(err, "plumed-input"), how
            outcomes["error"] += 1
            continue
        assert valid, f"accepted: {how}"
        _check_written(out.read_text(), args)
        outcomes["ok"] += 1
    assert outcomes["ok"] > 50 and outcomes["error"] > 200, outcomes


def test_random_plumed_input_options_of_any_type_raise_value_errors(tmp_path):
    """The library function, with values of any type: a ValueError or a valid plumed.dat."""
    model = save_model_with_hints(tmp_path / "m.pt", sigma_hint=[0.1, 0.1, 0.1, 0.1, 2.0, 1.0], atoms_per_molecule=2)
    rng = np.random.default_rng(5)
    pool: list[Any] = [
        None,
        0,
        1,
        2,
        -1,
        2.5,
        1e9,
        float("nan"),
        float("inf"),
        "",
        "1",
        "x y",
        "cpu",
        "HILLS",
        [1],
        {"a": 1},
        True,
        b"1-64",
        "1-64",
        "n_crystal",
        30.0,
        0.6,
    ]
    fields = (
        "atoms",
        "cv",
        "temp",
        "height",
        "sigma",
        "pace",
        "biasfactor",
        "stride",
        "device",
        "threads",
        "engine",
        "hills",
        "colvar",
    )
    ok = 0
    for case in range(200):
        values: dict[str, Any] = {"atoms": "1-64", "temp": 0.6}
        for name in rng.choice(fields, int(rng.integers(1, 4)), replace=False):
            values[str(name)] = pool[int(rng.integers(len(pool)))]
        try:
            text = plumed_input(model, PlumedInputOptions(**values))
        except ValueError:
            continue
        except Exception as exc:  # noqa: BLE001 -- the fuzz reports every other exception
            pytest.fail(f"case {case} {values}: {type(exc).__name__}: {exc}")
        _check_written(text, [f"{k}={v!r}" for k, v in values.items()])
        ok += 1
    assert ok > 5
