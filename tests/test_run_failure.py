"""A biased run whose atoms fly apart: LAMMPS's error is recognised, `latentcv compare`
records the run (not crystallised, the step, the message) instead of losing the table,
keeps it on a rerun, and still raises every other error."""

from __future__ import annotations

import json

import pytest

from latentcv.cv_models.app import compare as compare_module
from latentcv.cv_models.app.compare import CompareConfig, run_one
from latentcv.cv_models.app.compare_report import markdown_table, summarise
from latentcv.cv_models.app.run_failure import lammps_blow_up

# the line LAMMPS wrote when a trimers run under an n_nucleus bias with SIGMA 0.0136 blew up
ANGLE_MISSING = "ERROR on proc 0: Angle atoms 1282 1283 1284 missing on proc 0 at step 46751"
HEADER = "LAMMPS (29 Aug 2024)\n   Step          Temp\n     46000   1.0772806\n"


def _log(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_blow_up_errors_are_told_from_other_errors(tmp_path):
    assert lammps_blow_up(tmp_path) is None  # no log
    _log(tmp_path, "log.lammps", HEADER + "Total wall time: 0:08:00\n")
    assert lammps_blow_up(tmp_path) is None  # no error
    _log(tmp_path, "log.lammps", HEADER + ANGLE_MISSING + "\nFor more information see ...\n")
    blown = lammps_blow_up(tmp_path)
    assert blown is not None and blown.step == 46751 and "Angle atoms" in blown.message
    for other in (
        "ERROR: Lost atoms: original 1536 current 1533 (src/thermo.cpp:488)",
        "ERROR: Bond atoms 3 4 missing at step 12",
    ):
        _log(tmp_path, "log.lammps", HEADER + other + "\n")
        assert lammps_blow_up(tmp_path) is not None, other
    _log(tmp_path, "log.lammps", HEADER + "ERROR: Unknown command: fix nonsense (src/input.cpp:314)\n")
    assert lammps_blow_up(tmp_path) is None  # an input error is not a blow-up


@pytest.fixture
def cfg(tmp_path):
    return CompareConfig(system="trimers", cvs=("q6",), seeds=(2,), steps=120000, out=str(tmp_path)).validate()


def test_compare_records_a_blown_up_run_and_keeps_it(cfg, tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "q6-seed2"
    calls = []

    def blows_up(run_cfg):
        calls.append(run_cfg)
        _log(folder, "log.from45000.lammps", HEADER + ANGLE_MISSING + "\n")
        (folder / "sittings.json").write_text(json.dumps({"5000": 50.0, "45000": 450.0}))
        raise Exception(ANGLE_MISSING)

    monkeypatch.setattr(compare_module, "run_metadynamics", blows_up)
    result = run_one(cfg, "q6", 2, 0.5)
    assert result["blew_up"] == ANGLE_MISSING and result["crystallised_at"] is None
    assert result["steps_run"] == 46751 and result["ms_per_step"] == pytest.approx(10.0)
    assert json.loads((folder / "result.json").read_text())["blew_up"] == ANGLE_MISSING
    assert run_one(cfg, "q6", 2, 0.5)["steps_run"] == 46751 and len(calls) == 1  # kept, not rerun
    table = markdown_table(summarise([result], ("q6",)), cfg, {"q6": 0.5}, "local P2")
    assert "| q6 | 0.5 | 0/1 (1 blew up) | never (< half) |" in table
    assert table.rstrip().endswith("| – | – |")  # no judged frames: no largest share, no structure
    judged = {**result, "seed": 3, "blew_up": None, "solid_fraction": [0.1, 0.4]}
    assert summarise([result, judged], ("q6",))[0].max_fraction == pytest.approx(0.4)  # not a median with 0


def test_compare_raises_an_error_that_is_not_a_blow_up(cfg, monkeypatch):
    def fails(run_cfg):
        raise RuntimeError("PLUMED: cannot read the model")

    monkeypatch.setattr(compare_module, "run_metadynamics", fails)
    with pytest.raises(RuntimeError, match="cannot read the model"):
        run_one(cfg, "q6", 2, 0.5)


TORN = (
    "ERROR: fix plumed: PLUMED failed while computing the bias: \n"
    "(core/Action.cpp:372) void PLMD::Action::error(const std::string&) const\n"
    "ERROR in input to action LATENT_CV with label cv : latentcv: atom 78 of the ATOMS list is 1.8363 lj "
    "from the first atom of its molecule (26), but the model's molecules are at most 1.8352 lj across\n"
)


def test_a_molecule_torn_apart_mid_run_is_a_blow_up_but_not_at_the_first_step(tmp_path):
    """latentcv's refusal of a too-wide molecule: torn apart after the run started (a trimers
    run under SIGMA 0.0136 at step ~45 000), an ATOMS list out of order at step 0."""
    start = "  1 by 1 by 1 MPI processor grid\n   Step          Temp          Press\n"
    _log(tmp_path, "log.from45000.lammps", start + "     45000   1.1334515      0.85017773\n" + TORN)
    blown = lammps_blow_up(tmp_path)
    assert blown is not None and blown.step == 45000 and "at most 1.8352 lj across" in blown.message
    _log(tmp_path, "log.from45000.lammps", start + "         0   1.1334515      0.85017773\n" + TORN)
    assert lammps_blow_up(tmp_path) is None
    _log(tmp_path, "log.from45000.lammps", start + TORN)
    assert lammps_blow_up(tmp_path) is None
