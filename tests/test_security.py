"""Never run a stranger's code, never lose a file (issue 20; docs/security.md).

- A checkpoint whose unpickling would run a payload is refused by every command that
  reads checkpoints, and the payload does not run.
- Files latentcv writes (model, checkpoint, dataset) get the mode ``open()`` gives
  (0o666 less the umask).
- A failed write (full disk, file too large) is an error naming the file and the cause;
  the previous file is kept and no temporary file is left.
- A directory given as MODEL or CHECKPOINT is called a directory.
"""

from __future__ import annotations

import errno
import json
import os
import pickletools
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from latentcv.cv_models.app.cli import main
from latentcv.cv_models.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_encoder,
    load_trained_encoder,
    plain_data,
    write_checkpoint,
)
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.atomic_write import write_atomically
from latentcv.cv_models.synthetic import synthetic_dataset
from tests.export_helpers import save_model_with_hints, tiny_config

REFUSED = "refused, nothing from it was run"


class Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint would do (os.system...)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    """A file shaped like a checkpoint (model_state, model_config, centroids) with a payload."""
    torch.save(
        {
            "version": 2,
            "model_config": {},
            "model_state": {},
            "centroids": {"crystal": [1.0], "melt": [0.0]},
            "summary": Payload(marker),
        },
        str(path),
    )
    return path


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    """(crafted checkpoint, marker its payload would create)."""
    marker = tmp_path / "PAYLOAD_RAN"
    return crafted_checkpoint(tmp_path / "evil.pt", marker), marker


def write_config(folder: Path, extra: str = "", data: str = "") -> Path:
    """The tiny training config (output_dir ``run``), with lines added to [training] / [data]."""
    text = tiny_config(apm=1, epochs=1).replace("[training]\n", f"[training]\n{extra}\n")
    text = text.replace("[data]\n", f"[data]\n{data}\n")
    (folder / "config.toml").write_text(text)
    return folder / "config.toml"


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``latentcv ARGS`` through its Python entry: (exit code, stderr)."""
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


# ---------------------------------------------------------------------------- no code from data files
def test_the_payload_is_real(crafted: tuple[Path, Path]) -> None:
    """The crafted file really carries a call (so the tests below can fail), read without
    running it: its pickle names the payload's callable (``io open``) and calls it (REDUCE),
    which unpickling without ``weights_only`` would execute."""
    evil, marker = crafted
    with zipfile.ZipFile(evil) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(archive.read(name))]
    assert ("GLOBAL", "io open") in ops and ("REDUCE", None) in ops, ops
    assert not marker.exists()


def test_library_readers_refuse_a_crafted_checkpoint(crafted: tuple[Path, Path]) -> None:
    """load_checkpoint / load_encoder (demo, diagnostics, benchmarks) / load_trained_encoder (export)."""
    evil, marker = crafted
    for reader in (load_checkpoint, load_encoder, load_trained_encoder):
        with pytest.raises(CheckpointError, match=REFUSED) as info:
            reader(evil)
        assert "(io.open)" in str(info.value) and "latentcv train CONFIG" in str(info.value)
    assert not marker.exists()


def test_export_refuses_a_crafted_checkpoint(crafted, tmp_path, capsys) -> None:
    evil, marker = crafted
    rc, err = run_cli(["export", evil, "-o", tmp_path / "m.pt"], capsys)
    assert rc == 2 and REFUSED in err and str(evil) in err, err
    assert not marker.exists() and not (tmp_path / "m.pt").exists()


def test_train_refuses_a_crafted_checkpoint_last_when_resuming(crafted, tmp_path, capsys) -> None:
    evil, marker = crafted
    cfg = write_config(tmp_path)
    (tmp_path / "run").mkdir()
    last = tmp_path / "run" / "checkpoint_last.pt"
    last.write_bytes(evil.read_bytes())
    rc, err = run_cli(["train", cfg], capsys)
    assert rc == 2 and REFUSED in err and "checkpoint_last.pt" in err and "--no-resume" in err, err
    assert not marker.exists() and not (tmp_path / "run" / "checkpoint.pt").exists()


def test_train_refuses_a_crafted_init_from(crafted, tmp_path, capsys) -> None:
    evil, marker = crafted
    cfg = write_config(tmp_path, extra=f'init_from = "{evil}"')
    rc, err = run_cli(["train", cfg], capsys)
    assert rc == 2 and REFUSED in err, err
    assert not marker.exists()


def test_refine_refuses_a_crafted_checkpoint(crafted, tmp_path, capsys) -> None:
    evil, marker = crafted
    cfg = write_config(tmp_path, data='molecule_labels = "ten_wolde"')
    rc, err = run_cli(
        ["refine", cfg, evil, "--rounds", "1", "--seeds", "1", "--steps", "500", "--out", tmp_path / "refine"], capsys
    )
    assert rc == 2 and REFUSED in err, err
    assert not marker.exists() and not (tmp_path / "refine" / "round1" / "model.pt").exists()


def test_a_dataset_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    evil = tmp_path / "evil.npz"
    np.savez(
        evil,
        counts=np.array([1]),
        positions=np.zeros((1, 3)),
        cells=np.eye(3)[None],
        molecule=np.zeros(1, int),
        species=np.zeros(1, int),
        meta=np.array([Payload(marker)], dtype=object),
    )
    with pytest.raises(ValueError, match="allow_pickle"):
        Dataset.load(evil)
    assert not marker.exists()


def test_a_checkpoint_with_numpy_objects_names_the_fix(tmp_path: Path) -> None:
    """What an older latentcv could write (a NumPy number in the summary) is refused, never
    unpickled, with what to do; written through write_checkpoint the same data loads."""
    ck = {
        "version": 2,
        "model_config": {},
        "model_state": {"w": torch.ones(2)},
        "summary": {"acc": np.float64(0.5), "where": Path("runs/x")},
        "centroids": {"crystal": np.zeros(2)},
    }
    torch.save(ck, str(tmp_path / "old.pt"))
    with pytest.raises(CheckpointError, match=r"numpy.*re-train with `latentcv train CONFIG`"):
        load_checkpoint(tmp_path / "old.pt")
    write_checkpoint(tmp_path / "new.pt", ck)
    back = load_checkpoint(tmp_path / "new.pt")
    assert back["summary"] == {"acc": 0.5, "where": "runs/x"} and back["centroids"]["crystal"] == [0.0, 0.0]
    assert torch.equal(back["model_state"]["w"], torch.ones(2))


def test_plain_data_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match=r"checkpoint\['summary'\]\['bad'\] is a .*Payload"):
        plain_data({"summary": {"bad": Payload(Path("x"))}})


# ---------------------------------------------------------------------------- file modes follow the umask
def write_all_kinds(folder: Path) -> dict[str, Path]:
    """A model, a checkpoint, a dataset and a summary written the way latentcv writes them."""
    return {
        "model": save_model_with_hints(folder / "model.pt", [0.1]),
        "checkpoint": (write_checkpoint(folder / "checkpoint.pt", {"w": torch.ones(3)}), folder / "checkpoint.pt")[1],
        "dataset": (
            Dataset(synthetic_dataset(frames_per_trajectory=1, trajectories_per_phase=1)).save(folder / "data.npz"),
            folder / "data.npz",
        )[1],
        "summary": write_atomically(folder / "summary.json", b"{}", "summary"),
    }


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        (tmp_path / "model.pt").write_text("an older file, mode 0600")
        os.chmod(tmp_path / "model.pt", 0o600)
        files = write_all_kinds(tmp_path)
    finally:
        os.umask(old)
    for kind, path in files.items():
        assert oct(path.stat().st_mode & 0o777) == oct(mode), kind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "data.npz", "model.pt", "summary.json"]


def test_export_writes_the_model_with_the_umask_mode(tiny_models, tmp_path: Path, capsys) -> None:
    """`latentcv export` itself (the checked temporary file renamed over the model)."""
    old = os.umask(0o002)
    try:
        rc, err = run_cli(["export", tiny_models.checkpoint(1), "-o", tmp_path / "model.pt"], capsys)
    finally:
        os.umask(old)
    assert rc == 0, err
    assert oct((tmp_path / "model.pt").stat().st_mode & 0o777) == oct(0o664)


# ---------------------------------------------------------------------------- write failures are errors
FILE_TOO_LARGE = r"""
import json, resource, signal, sys, torch
from pathlib import Path
from latentcv.cv_models.checkpoint import write_checkpoint
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.synthetic import synthetic_dataset
from tests.export_helpers import save_model_with_hints

folder = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
writes = {
    "checkpoint": lambda: write_checkpoint(folder / "checkpoint.pt", {"w": torch.ones(10_000)}),
    "dataset": lambda: Dataset(synthetic_dataset(frames_per_trajectory=2)).save(folder / "data.npz"),
    "model": lambda: save_model_with_hints(folder / "model.pt", [0.1]),
}
out = {}
for kind, write in writes.items():
    try:
        write()
        out[kind] = "written"
    except OSError as exc:
        out[kind] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def test_a_file_too_large_keeps_the_previous_file(tmp_path: Path) -> None:
    """Real write errors (EFBIG under RLIMIT_FSIZE) for a checkpoint, a dataset and a model."""
    for name in ("checkpoint.pt", "data.npz", "model.pt"):
        (tmp_path / name).write_text(f"previous {name}")
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-c", FILE_TOO_LARGE, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for kind, name in (("checkpoint", "checkpoint.pt"), ("dataset", "data.npz"), ("model", "model.pt")):
        assert result[kind] == (
            f"WriteError: cannot write {kind} {tmp_path / name}: File too large; the previous {kind} is kept"
        ), result
        assert (tmp_path / name).read_text() == f"previous {name}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "data.npz", "model.pt"]


def no_space(fd: int, data) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_train_stops_on_a_full_disk_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    cfg = write_config(tmp_path)
    assert run_cli(["train", cfg], capsys)[0] == 0
    last = tmp_path / "run" / "checkpoint_last.pt"
    before = last.read_bytes()
    monkeypatch.setattr("latentcv.cv_models.atomic_write._write_all", no_space)
    rc, err = run_cli(["train", cfg, "--epochs", "2"], capsys)
    assert rc == 2, err
    assert "latentcv train: error: cannot write checkpoint " in err, err
    assert "checkpoint_" in err and ": No space left on device; the previous checkpoint is kept" in err, err
    assert last.read_bytes() == before
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_export_on_a_full_disk_names_the_model_and_keeps_the_previous_one(
    tiny_models, tmp_path, capsys, monkeypatch
) -> None:
    out = tmp_path / "model.pt"
    out.write_text("previous model")
    monkeypatch.setattr("latentcv.cv_models.atomic_write._write_all", no_space)
    rc, err = run_cli(["export", tiny_models.checkpoint(1), "-o", out], capsys)
    assert rc == 2 and f"cannot write model {out}: No space left on device; the previous model is kept" in err, err
    assert out.read_text() == "previous model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


# ---------------------------------------------------------------------------- a directory is not a file
@pytest.mark.parametrize(
    "command", [["info", "{d}"], ["eval", "{d}", "{f}"], ["plumed-input", "{d}", "--natoms", "4", "--temp", "1"]]
)
def test_a_directory_given_as_model_is_called_one(tmp_path, capsys, command) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "model.pt").write_text("x")
    (folder / "checkpoint.pt").write_text("x")
    rc, err = run_cli([a.format(d=folder, f=folder / "model.pt") for a in command], capsys)
    assert rc == 2 and f"{folder} is a directory, not a model file" in err and "(in it: model.pt)" in err, err
    assert "corrupt" not in err


def test_a_directory_given_as_checkpoint_is_called_one(tmp_path, capsys) -> None:
    rc, err = run_cli(["export", tmp_path, "-o", tmp_path / "m.pt"], capsys)
    assert rc == 2 and f"{tmp_path} is a directory, not a checkpoint" in err and "checkpoint.pt" in err, err


def test_a_directory_given_as_model_to_the_cpp_core_is_called_one(tmp_path) -> None:
    """The C++ core (used by the PLUMED action LATENT_CV MODEL=...) says the same."""
    from latentcv.cv_models.native import core

    with pytest.raises(Exception, match="is a directory, not a model file"):
        core.Model(str(tmp_path))
