"""The tutorial pages as benchmarks/tutorial.py runs them (without running them: minutes):
each page writes only into its own folder, and its training config loads and validates;
the ice page trains in Å on CHILL+ labels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from latentcv.cv_models.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "docs" / "tutorial.md", ROOT / "docs" / "tutorial-ice.md"]


def runner():
    spec = importlib.util.spec_from_file_location("tutorial_runner", ROOT / "benchmarks" / "tutorial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def written_files(page: Path) -> dict[str, str]:
    """{path: text} of the page's ```toml blocks that start with ``# file: PATH``."""
    out = {}
    for lang, body in runner().BLOCK.findall(page.read_text()):
        if lang == "toml" and body.startswith("# file: "):
            first, rest = body.split("\n", 1)
            out[first[len("# file: ") :].strip()] = rest
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_a_page_writes_into_its_own_folder_and_its_config_validates(page, tmp_path):
    folder = runner().output_dir(page).name
    files = written_files(page)
    assert files and all(path.startswith(folder + "/") for path in files)
    assert f"mkdir -p {folder}" in runner().script(page)
    configs = {path: text for path, text in files.items() if "[data]" in text}
    assert len(configs) == 1
    ((path, text),) = configs.items()
    (tmp_path / Path(path).name).write_text(text)
    cfg = load_config(tmp_path / Path(path).name)  # validates every key
    assert cfg.data.trajectories and cfg.data.molecule_labels != "frame"


def test_the_ice_tutorial_trains_in_angstrom_on_chill_plus_labels(tmp_path):
    ((path, text),) = ((p, t) for p, t in written_files(PAGES[1]).items() if "[data]" in t)
    (tmp_path / "mw.toml").write_text(text)
    cfg = load_config(tmp_path / "mw.toml")
    assert all(t["units"] == "real" for t in cfg.data.trajectories)
    assert cfg.data.molecule_labels == "chill_plus" and cfg.data.label_cutoff == 3.5
    assert cfg.model.cutoff == pytest.approx(3.5) and 3 in cfg.model.moment_degrees
    labels = {t["label"] for t in cfg.data.trajectories}
    assert labels == {"crystal", "melt", "unlabeled"}
