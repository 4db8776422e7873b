"""Every input checked where it enters (issue 20): training frames (finite, same atoms in
every frame, truncated or non-numeric dumps, empty trajectories), config tables (unknown
keys at any depth, wrong types), training (a non-finite loss stops it, no checkpoint with
NaN weights), and every ``latentcv plumed-input`` option. Errors name the file, the
frame, the atom, the key or the option, and the CLI ends them with exit 2 and one line.
Over 400 lines because it is a table of bad inputs and their messages, one row each."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from export_helpers import save_model_with_hints, tiny_config
from latentcv.cv_models.app.cli import main
from latentcv.cv_models.config import ConfigError, load_config
from latentcv.cv_models.data import Dataset, read_lammps_data, read_lammps_dump, read_mdtraj
from latentcv.cv_models.data import write_lammps_data, write_lammps_dump
from latentcv.cv_models.data.readers import DUMP_KEYS, MDTRAJ_KEYS
from latentcv.cv_models.data.sources import load_frames
from latentcv.cv_models.synthetic import synthetic_dataset
from latentcv.cv_models.training import TrainingDivergedError, train

torch.set_num_threads(1)


def lj_frames(n: int = 3, phase: str = "crystal0"):
    """``n`` frames (32 atoms, fcc 2 x 2 x 2) of one synthetic trajectory."""
    frames = synthetic_dataset(atoms_per_molecule=1, n_cells=2, frames_per_trajectory=n, trajectories_per_phase=1)
    return [f for f in frames if f.trajectory == phase]


def dump_lines(tmp_path: Path, n: int = 3) -> list[str]:
    """The lines (with newlines) of a 3-frame dump; frame k starts at line 41 k, its atom
    rows at 41 k + 9 (ids 1..32, columns id mol type x y z)."""
    write_lammps_dump(tmp_path / "ref.dump", lj_frames(n))
    return (tmp_path / "ref.dump").read_text().splitlines(keepends=True)


def write(tmp_path: Path, lines: list[str], name: str = "t.dump") -> Path:
    path = tmp_path / name
    path.write_text("".join(lines))
    return path


def set_token(line: str, column: int, value: str) -> str:
    tokens = line.split()
    tokens[column] = value
    return " ".join(tokens) + "\n"


# ----------------------------------------------------------------------------- frames


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_non_finite_coordinate_names_file_frame_timestep_and_atom(tmp_path, value):
    lines = dump_lines(tmp_path)
    lines[41 + 9 + 6] = set_token(lines[41 + 9 + 6], 4, value)  # frame 1, atom id 7, y
    with pytest.raises(ValueError, match=r"t\.dump, frame 1 \(timestep 1\): atom id 7 has a non-finite position"):
        read_lammps_dump(write(tmp_path, lines))


def test_a_broken_cell_is_an_error(tmp_path):
    lines = dump_lines(tmp_path)
    lines[5] = "0 nan\n"
    with pytest.raises(ValueError, match=r"frame 0 \(timestep 0\): the cell .* not a finite"):
        read_lammps_dump(write(tmp_path, lines))
    lines = dump_lines(tmp_path)
    lines[6] = "3 3\n"  # ylo = yhi: no volume
    with pytest.raises(ValueError, match="has volume -?0; a periodic box needs a positive volume"):
        read_lammps_dump(write(tmp_path, lines))


def test_frames_with_other_atoms_are_an_error_naming_the_frame(tmp_path):
    lines = dump_lines(tmp_path)
    fewer = lines[: 41 + 3] + ["31\n"] + lines[41 + 4 : 41 + 9] + lines[41 + 10 :]  # frame 1 loses atom id 1
    with pytest.raises(ValueError, match=r"frame 1 \(timestep 1\) holds 31 atoms, frame 0 \(timestep 0\) 32: every"):
        read_lammps_dump(write(tmp_path, fewer))
    other = list(lines)
    other[82 + 9] = set_token(other[82 + 9], 0, "99")  # frame 2: id 1 became 99
    with pytest.raises(ValueError, match=r"frame 2 \(timestep 2\) holds other atom ids"):
        read_lammps_dump(write(tmp_path, other))
    retyped = list(lines)
    retyped[82 + 9] = set_token(retyped[82 + 9], 2, "2")
    with pytest.raises(ValueError, match=r"frame 2 \(timestep 2\) gives atoms other types"):
        read_lammps_dump(write(tmp_path, retyped))


@pytest.mark.parametrize(
    "lines, chars, message",
    [
        (59, 10, r"line 60, frame 1 \(timestep 1\): the file ends inside atom row 10 of 32 '"),
        (45, 0, r"line 46, frame 1 \(timestep 1\): the file ends where 'ITEM: BOX BOUNDS' should be"),
        (122, 20, r"line 123, frame 2 \(timestep 2\): the file ends inside atom row 32 of 32"),
        (42, 0, r"line 43, frame 1: the file ends where the timestep should be"),
        (42, 1, r"line 43, frame 1: the file ends inside the timestep '1'"),
    ],
)
def test_a_truncated_dump_names_file_line_and_frame(tmp_path, lines, chars, message):
    """Cut after ``lines`` whole lines and ``chars`` characters of the next one."""
    ref = dump_lines(tmp_path)
    with pytest.raises(ValueError, match=r"t\.dump, " + message):
        read_lammps_dump(write(tmp_path, ref[:lines] + [ref[lines][:chars]]))
    if chars == 0 and lines % 41 == 0:  # a cut between frames leaves whole frames
        assert len(read_lammps_dump(write(tmp_path, ref[:lines]))) == lines // 41


def test_non_numeric_or_malformed_rows_name_the_line(tmp_path):
    lines = dump_lines(tmp_path)
    row3 = lines[41 + 9 + 2]
    cases = {
        (41 + 9 + 2, set_token(row3, 5, "abc")): r"line 53, frame 1 \(timestep 1\): atom row 3: z = 'abc' is not a",
        (41 + 9 + 2, "3 3 1 0.1 0.2\n"): r"line 53, frame 1 \(timestep 1\): atom row 3 has 5 values for the 6",
        (41 + 9 + 2, set_token(row3, 0, "2.5")): r"line 53, frame 1 \(timestep 1\): atom row 3: id = 2\.5 is not an",
        (41 + 9 + 2, set_token(row3, 0, "2")): r"line 82, frame 1 \(timestep 1\): atom id 2 appears twice",
        (41 + 9 + 2, set_token(row3, 1, "nan")): r"line 53, frame 1 \(timestep 1\): atom row 3: mol = nan is not an",
        (41 + 1, "1.5\n"): r"line 43, frame 1: the timestep is not an integer: '1\.5'",
        (41 + 3, "-4\n"): r"line 45, frame 1 \(timestep 1\): NUMBER OF ATOMS is -4",
        (41 + 5, "0 x\n"): r"line 47, frame 1 \(timestep 1\): a BOX BOUNDS row is not numeric",
        (41 + 5, "0 1 2 3\n"): r"line 47, frame 1 \(timestep 1\): a BOX BOUNDS row has 4 value\(s\)",
        (41 + 8, "ITEM: ATOMS id id x y z\n"): r"line 50, frame 1 \(timestep 1\): 'ITEM: ATOMS' must name distinct",
        (41 + 8, "ITEM: ATOMS id mol type vx vy vz\n"): r"frame 1 \(timestep 1\): Dump has no coordinates",
        (41, "junk\n"): r"line 42: unexpected line 'junk' where 'ITEM: TIMESTEP' should start a frame",
    }
    for (k, line), message in cases.items():
        changed = list(lines)
        changed[k] = line
        with pytest.raises(ValueError, match=r"t\.dump, " + message):
            read_lammps_dump(write(tmp_path, changed))
        assert "\n" not in message
    extra = lines[: 41 + 41] + ["33 33 1 0.5 0.5 0.5\n"] + lines[41 + 41 :]  # one row more than NUMBER OF ATOMS says
    with pytest.raises(ValueError, match=r"t\.dump, line 83: unexpected line .*more atom rows than NUMBER OF"):
        read_lammps_dump(write(tmp_path, extra))
    (tmp_path / "bin.dump").write_bytes(b"ITEM: TIMESTEP\n\xff\xfe\x00\n")
    with pytest.raises(ValueError, match=r"bin\.dump, line \d.*not text"):
        read_lammps_dump(tmp_path / "bin.dump")


def test_units_and_time_items_before_a_frame_are_read(tmp_path):
    lines = dump_lines(tmp_path)
    frames = read_lammps_dump(write(tmp_path, ["ITEM: UNITS\n", "lj\n", "ITEM: TIME\n", "0.0\n"] + lines))
    assert len(frames) == 3 and frames[2].timestep == 2


def test_a_broken_data_file_names_file_and_row(tmp_path):
    frame = lj_frames(1)[0]
    write_lammps_data(tmp_path / "a.data", frame)
    text = (tmp_path / "a.data").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith("5 "))
    for changed, message in (
        (text.replace(row, row + " 7"), r"b\.data: Atoms row 5 .* has 7 values, expected 6"),
        (text.replace(row, set_token(row, 3, "abc")[:-1]), r"b\.data: Atoms row 5: 'abc' is not"),
        (text.replace("xlo xhi", "xlo_xhi"), r"b\.data: the header has no 'xlo xhi' line"),
    ):
        (tmp_path / "b.data").write_text(changed)
        with pytest.raises(ValueError, match=message):
            read_lammps_data(tmp_path / "b.data")


def test_a_file_mdtraj_cannot_read_is_a_value_error_naming_it(tmp_path):
    (tmp_path / "junk.xtc").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match=r"junk\.xtc: mdtraj cannot read it"):
        read_mdtraj(tmp_path / "junk.xtc", tmp_path / "junk.xtc")
    with pytest.raises(FileNotFoundError, match="missing.pdb"):
        read_mdtraj(tmp_path / "missing.pdb")


def test_a_saved_dataset_with_a_nan_frame_is_refused(tmp_path):
    frames = lj_frames(2)
    frames[1].positions[3, 0] = np.nan
    Dataset(frames).save(tmp_path / "d.npz")
    (tmp_path / "c.toml").write_text(
        tiny_config(1).replace(re.search(r"synthetic = .*", tiny_config(1)).group(0), 'dataset = "d.npz"')
    )
    with pytest.raises(ValueError, match=r"d\.npz: trajectory 'crystal0', frame 1: atom 3 \(row from 0\) has a non"):
        load_frames(load_config(tmp_path / "c.toml"))
    (tmp_path / "d.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match=r"d\.npz is not a dataset written by latentcv"):
        load_frames(load_config(tmp_path / "c.toml"))


# ----------------------------------------------------------------------------- config and trajectories


def dump_config(tmp_path: Path, crystal: str = "", melt: str = "", extra: str = "") -> Path:
    """A config training on crystal.dump and melt.dump (written here) with extra keys in their tables."""
    for name in ("crystal0", "melt0"):
        write_lammps_dump(tmp_path / f"{name}.dump", lj_frames(5, name))
    rows = (
        f'  {{ path = "crystal0.dump", label = "crystal"{crystal} }},\n'
        f'  {{ path = "melt0.dump", label = "melt"{melt} }},\n'
    )
    text = re.sub(r"synthetic = .*\n", "trajectories = [\n" + rows + "]\n", tiny_config(1, 1, "run")) + extra
    (tmp_path / "c.toml").write_text(text)
    return tmp_path / "c.toml"


def test_trajectory_tables_name_unknown_keys_and_bad_values(tmp_path):
    cases = {
        (", foo = 1", ""): r"unknown key data\.trajectories\[0\]\.foo of crystal0\.dump; the table of a LAMMPS "
        r"dump takes path, label, trajectory, stride, data_file, atoms_per_molecule, units",
        (", lable = 1", ""): r"unknown key data\.trajectories\[0\]\.lable of crystal0\.dump \(did you mean 'label'\?\)",
        ("", ", top = 'x.pdb', units = 'lj'"): r"unknown key data\.trajectories\[1\]\.units of melt0\.dump \(it "
        r"applies to LAMMPS dumps\); the table of an mdtraj-read file takes",
        (", stride = '2'", ""): r"data\.trajectories\[0\]\.stride of crystal0\.dump: '2' is not valid; expected an "
        r"integer >= 1",
        (", units = 'kelvin'", ""): r"data\.trajectories\[0\]\.units .*'kelvin' is not valid; expected a LAMMPS "
        r"units style",
        (", start = 1.5", ""): r"data\.trajectories\[0\]\.start .*: 1\.5 is not valid",
    }
    for (crystal, melt), message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(dump_config(tmp_path, crystal, melt))
    cfg = dump_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('label = "crystal"', 'label = "solid"'))
    with pytest.raises(
        ConfigError,
        match=r"data\.trajectories\[0\]\.label of crystal0\.dump: 'solid' is not "
        r"valid; expected \"crystal\", \"melt\"",
    ):
        load_config(cfg)
    cfg = dump_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('path = "melt0.dump", ', ""))
    with pytest.raises(ConfigError, match=r"data\.trajectories\[1\]: a table with at least `path` is required"):
        load_config(cfg)


def test_config_keys_at_every_depth_are_checked(tmp_path):
    base = tiny_config(1)
    cases = {
        base.replace("n_cells = 2", "n_cells = 2, n_cels = 3"): r"unknown key data\.synthetic\.n_cels \(did you mean "
        r"'n_cells'\?\); valid keys: atoms_per_molecule",
        base.replace("n_cells = 2", "n_cells = 2.5"): r"data\.synthetic\.n_cells = 2\.5: expected an integer",
        base.replace("n_cells = 2", "n_cells = 0"): r"data\.synthetic\.n_cells = 0: must be >= 1",
        base.replace("hidden = 8", "hiden = 8"): r"unknown key model\.hiden \(did you mean 'hidden'\?\); valid keys: "
        r"atoms_per_molecule, species",
        base.replace("lr = 5e-3", "lr = nan"): r"training\.lr = nan: expected a finite number",
        base.replace("lr = 5e-3", "lr = inf"): r"training\.lr = inf: expected a finite number",
        base.replace("n_blocks = 5", "n_blocks = [5]"): r"data\.n_blocks = \[5\]: expected an integer",
        base.replace("n_blocks = 5", "trajectories = [1]"): r"data\.trajectories = \[1\]: expected a list of tables",
        base + "[model.extra]\na = 1\n": r"unknown key model\.extra",
        base.replace("[training]", "[training]\nseed = -1"): r"seed must be in \[0, 2\*\*32\)",
        base.replace("[model]", "[model]\nspecies = [-1]"): r"species and n_species must be >= 0",
        "data = 3\n": r"\[data\] must be a table",
    }
    for text, message in cases.items():
        (tmp_path / "c.toml").write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path / "c.toml")
    (tmp_path / "c.json").write_text(json.dumps({"data": {"synthetic": {"n_cells": 2}}, "model": {"cutoff": None}}))
    with pytest.raises(ConfigError, match=r"model\.cutoff = None: expected a finite number"):
        load_config(tmp_path / "c.json")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "bin.toml")
    with pytest.raises(ConfigError, match="does not exist or is not a file"):
        load_config(tmp_path)


def test_trajectory_keys_are_the_readers_keyword_arguments():
    """DUMP_KEYS / MDTRAJ_KEYS (what a trajectories table may hold) follow the readers' signatures."""
    for reader, keys in ((read_lammps_dump, DUMP_KEYS), (read_mdtraj, MDTRAJ_KEYS)):
        params = set(inspect.signature(reader).parameters)
        assert params == set(keys), (reader.__name__, params ^ set(keys))


def test_an_empty_trajectory_is_an_error_naming_it(tmp_path):
    cfg = dump_config(tmp_path)
    (tmp_path / "crystal0.dump").write_text("")
    with pytest.raises(
        ValueError,
        match=r"data\.trajectories\[0\] \(.*crystal0\.dump, label crystal\): no frames in the "
        r"file; every trajectory the config names must give frames",
    ):
        load_frames(load_config(cfg))
    cfg = dump_config(tmp_path, ", start = 10")
    with pytest.raises(ValueError, match=r"no frames selected by \{'start': 10\}"):
        load_frames(load_config(cfg))
    (tmp_path / "crystal0.dump").unlink()
    with pytest.raises(FileNotFoundError, match=r"data\.trajectories\[0\]\.path: .*crystal0\.dump does not exist"):
        load_frames(load_config(cfg))


def test_cli_train_on_a_nan_frame_or_a_bad_table_exits_2_with_one_line(tmp_path, capsys):
    cfg = dump_config(tmp_path)
    lines = (tmp_path / "melt0.dump").read_text().splitlines(keepends=True)
    lines[41 + 9 + 4] = set_token(lines[41 + 9 + 4], 3, "nan")
    (tmp_path / "melt0.dump").write_text("".join(lines))
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"melt0\.dump, frame 1 \(timestep 1\): atom id 5 has a non-finite", err[0])
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    cfg = dump_config(tmp_path, ", colour = 'red'")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.trajectories[0].colour" in err[0] and "Traceback" not in err[0]


# ----------------------------------------------------------------------------- training


def test_a_diverging_run_stops_and_keeps_the_good_checkpoints(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tiny_config(1, 1, "run"))
    assert main(["train", str(cfg)]) == 0
    run = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run.glob("checkpoint*.pt")}
    assert set(before) == {"checkpoint.pt", "checkpoint_best.pt", "checkpoint_last.pt"}
    cfg.write_text(tiny_config(1, 3, "run").replace("lr = 5e-3", "lr = 1e200"))
    assert main(["train", str(cfg), "--no-resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert re.search(
        r"training stopped at epoch 0, step [1-9]: the (loss|gradient norm) is (nan|inf) on the batch of "
        r"frames \w+:\d+.*learning rate too high \(\[training\] lr = 1e\+200: lower it, e\.g\. "
        r"--set training\.lr=1e\+199\).*checkpoint_last\.pt keeps the last good epoch",
        err[0],
    ), err[0]
    assert {p.name: p.read_bytes() for p in run.glob("checkpoint*.pt")} == before


def test_train_refuses_frames_with_a_nan_position(tmp_path):
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(tiny_config(1, 1, "run"))
    frames = synthetic_dataset(atoms_per_molecule=1, n_cells=2, frames_per_trajectory=5)
    frames[7].positions[2, 1] = np.inf
    with pytest.raises(
        ConfigError,
        match=rf"trajectory '{frames[7].trajectory}', frame {frames[7].index}: atom 2 "
        r"\(row from 0\) has a non-finite position",
    ):
        train(load_config(cfg_path), frames)
    assert not (tmp_path / "run" / "checkpoint_last.pt").exists()


def test_diverged_error_is_a_runtime_error():
    assert issubclass(TrainingDivergedError, RuntimeError)  # the CLI turns it into exit 2 and one line


def test_an_error_in_a_training_process_comes_back_as_one_line():
    """processes > 1: torch hands back the process's traceback as text; train() raises its last line."""
    from latentcv.cv_models.training import _process_error

    text = (
        '\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n  File "x.py", '
        "line 1, in f\nlatentcv.cv_models.training.TrainingDivergedError: training stopped at epoch 0, step 1: "
        "the loss is nan\n"
    )
    err = _process_error(text, 2)
    assert isinstance(err, TrainingDivergedError)
    assert str(err) == "training stopped at epoch 0, step 1: the loss is nan (in one of 2 training processes)"
    err = _process_error("Traceback ...\nValueError: bad thing: really\n", 3)
    assert type(err) is RuntimeError and str(err) == "bad thing: really (in one of 3 training processes, ValueError)"


# ----------------------------------------------------------------------------- plumed-input


@pytest.fixture(scope="module")
def hints_model(tmp_path_factory) -> Path:
    return save_model_with_hints(tmp_path_factory.mktemp("pi") / "m.pt", sigma_hint=[0.1, 0.1, 0.1, 0.1, 2.0, 1.0])


PLUMED_INPUT_ERRORS = [
    (["--natoms", "-5"], "--natoms -5: must be an integer >= 1"),
    (["--natoms", "0"], "--natoms 0: must be an integer >= 1"),
    (["--height", "-1"], "--height -1.0: must be a finite number > 0"),
    (["--height", "nan"], "--height nan: must be a finite number > 0"),
    (["--sigma", "0"], "--sigma 0.0: must be a finite number > 0"),
    (["--sigma", "-inf"], "--sigma -inf: must be a finite number > 0"),
    (["--pace", "0"], "--pace 0: must be an integer >= 1"),
    (["--stride", "-3"], "--print-stride -3: must be an integer >= 1"),  # --stride: the old name
    (["--bias-stride", "0"], "--bias-stride 0: must be an integer >= 1"),
    (["--pace", "7"], "--pace 7 is not a multiple of --bias-stride 5"),
    (["--print-stride", "12"], "--print-stride 12 is not a multiple of --bias-stride 5"),
    (["--threads", "0"], "--threads 0: must be an integer >= 1"),
    (["--temp", "inf"], "--temp inf: must be a finite number > 0"),
    (["--temp", "0"], "--temp 0.0: must be a finite number > 0"),
    (["--biasfactor", "0.5"], "--biasfactor 0.5: must be a finite number > 1"),
    (["--biasfactor", "1"], "--biasfactor 1.0: must be a finite number > 1"),
    (["--hills", "a b"], "--hills 'a b': a PLUMED file name must be non-empty, without whitespace, '='"),
    (["--hills", ""], "--hills '': a PLUMED file name must be non-empty"),
    (["--colvar", "C=1"], "--colvar 'C=1': a PLUMED file name"),
    (["--colvar", "C#1"], "--colvar 'C#1': a PLUMED file name"),
    (["--colvar", "C\nD"], "--colvar 'C\\nD': a PLUMED file name"),
    (["--colvar", "HILLS"], "--hills and --colvar both name HILLS"),
    (["--device", "gpu"], "--device 'gpu': one of cpu, cuda, cuda:N, auto"),
    (["--atoms", "0-63"], "--atoms 0-63: PLUMED numbers atoms from 1"),
    (["--atoms", "1-32 33-64"], "--atoms '1-32 33-64': the PLUMED atom list"),
    (["--atoms", "1-64", "--natoms", "64"], "give --atoms or --natoms, not both"),
    (["--cv", "q6"], "--cv q6: the model's outputs are z0, z1, proj, dcrys, n_crystal"),
]


@pytest.mark.parametrize("args, message", PLUMED_INPUT_ERRORS, ids=[" ".join(a) for a, _ in PLUMED_INPUT_ERRORS])
def test_plumed_input_refuses_every_bad_option(hints_model, tmp_path, capsys, args, message):
    out = tmp_path / "plumed.dat"
    options = {"--natoms": "64", "--temp": "0.6"}
    if "--atoms" in args:
        options.pop("--natoms")
    options.update(zip(args[::2], args[1::2]))
    argv = ["plumed-input", str(hints_model), "--out", str(out)] + [f"{k}={v}" for k, v in options.items()]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("latentcv plumed-input: error: "), err
    assert message in err[0]
    assert not out.exists()


def test_plumed_input_good_options_are_written(hints_model, tmp_path):
    out = tmp_path / "plumed.dat"
    assert (
        main(
            [
                "plumed-input",
                str(hints_model),
                "--natoms",
                "64",
                "--temp",
                "0.6",
                "--height",
                "0.3",
                "--sigma",
                "0.5",
                "--pace",
                "1",
                "--biasfactor",
                "1.5",
                "--stride",
                "1",
                "--bias-stride",
                "1",
                "--device",
                "cuda:1",
                "--hills",
                "out/H.1",
                "--colvar",
                "C-2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metad = next(ln for ln in out.read_text().splitlines() if ln.startswith("metad:"))
    assert metad == "metad: METAD ARG=cv.n_crystal SIGMA=0.5 HEIGHT=0.3 PACE=1 BIASFACTOR=1.5 TEMP=0.6 FILE=out/H.1"
    assert main(["plumed-input", str(hints_model), "--natoms", "64", "--temp", "0.6", "--out", str(tmp_path)]) == 2


def test_plumed_input_refuses_an_unusable_sigma_hint(tmp_path):
    from latentcv.export.plumed_input import PlumedInputOptions, plumed_input

    model = save_model_with_hints(tmp_path / "m.pt", sigma_hint=[0.1, 0.1, 0.0, 0.1, float("nan"), 1.0])
    for cv in ("proj", "n_crystal"):
        with pytest.raises(ValueError, match=rf"sigma_hint of {cv} gives SIGMA = (0|nan).*pass --sigma S"):
            plumed_input(model, PlumedInputOptions(atoms="1-64", cv=cv, temp=0.6))
    text = plumed_input(model, PlumedInputOptions(atoms="1-64", cv="proj", temp=0.6, sigma=0.2))
    assert "SIGMA=0.2 " in text


def test_export_names_a_checkpoint_with_nan_weights(tmp_path, capsys):
    """A checkpoint whose weights are NaN (written before training stopped such runs) is
    refused by `latentcv export` as a diverged training, not as a model to train longer."""
    from latentcv.cv_models.checkpoint import load_checkpoint, write_checkpoint

    (tmp_path / "c.toml").write_text(tiny_config(1, 1, "run"))
    assert main(["train", str(tmp_path / "c.toml")]) == 0
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    name = next(k for k, v in ck["model_state"].items() if v.is_floating_point() and "encoder" in k)
    ck["model_state"][name] = torch.full_like(ck["model_state"][name], float("nan"))
    write_checkpoint(tmp_path / "nan.pt", ck)
    capsys.readouterr()
    assert main(["export", str(tmp_path / "nan.pt"), "-o", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not finite (NaN or inf" in err[0] and "training diverged" in err[0], err
    assert "train longer" not in err[0] and not (tmp_path / "m.pt").exists()
