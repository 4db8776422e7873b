"""A metadynamics run carried over two sittings (``MetadRunConfig.resume``: LAMMPS restart
files, latentcv's ``fix plumed`` restart, the judged dump cut back) ends as the run done in
one: the same HILLS, COLVAR and dumped frames, none lost or repeated."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np

from latentcv.cv_models.app.metad_run import MetadRunConfig, run_metadynamics
from latentcv.cv_models.app.resume import restart_files
from latentcv.cv_models.data.plumed_table import read_plumed_table

STEPS, EVERY = 2000, 500


def _plumed(folder) -> str:
    """A cheap bias; hills in full precision (a restarted PLUMED rebuilds its bias from HILLS)."""
    return (
        "d: DISTANCE ATOMS=1,2\n"
        f"metad: METAD ARG=d SIGMA=0.1 HEIGHT=0.3 PACE=50 FILE={folder / 'HILLS'} FMT=%24.16e\n"
        f"PRINT ARG=d,metad.bias STRIDE=50 FILE={folder / 'COLVAR'} FMT=%24.16e\n"
    )


def _config(folder) -> MetadRunConfig:
    return MetadRunConfig(
        folder=folder,
        plumed=_plumed(folder),
        cells=3,
        steps=STEPS,
        melt_steps=200,
        equil_steps=100,
        dump_every=100,
        check_every=EVERY,
        hold_steps=EVERY,
        restart_every=EVERY,
        resume=True,
        progress=False,
    )


def _frames(dump) -> tuple[list[int], np.ndarray]:
    text = dump.read_text().split("ITEM: TIMESTEP\n")[1:]
    steps = [int(t.split("\n", 1)[0]) for t in text]
    coords = np.array([[list(map(float, line.split()[2:5])) for line in t.split("\n")[9:] if line] for t in text])
    return steps, coords


def test_a_killed_run_resumes_as_one(tmp_path):
    folder = tmp_path / "run"
    whole = run_metadynamics(_config(folder))
    assert sorted(restart_files(folder)) == [500, 1000, 1500, 2000] and whole.steps_run == STEPS
    reference = tmp_path / "uninterrupted"
    shutil.copytree(folder, reference)
    # as if killed while writing step 1 500's restart file (cut in half, not yet noted in
    # sittings.json), its other files written on to the end: it resumes from step 1 000
    restart_files(folder)[2000].unlink()
    half = restart_files(folder)[1500]
    half.write_bytes(half.read_bytes()[: half.stat().st_size // 2])
    sittings = json.loads((folder / "sittings.json").read_text())
    (folder / "sittings.json").write_text(json.dumps({k: v for k, v in sittings.items() if int(k) <= 1000}))
    resumed = run_metadynamics(_config(folder))
    assert resumed.steps_run == STEPS
    assert (folder / "traj.dump.cut.1000").stat().st_size > 0  # the frames after the restart, kept
    assert (folder / "HILLS.cut.1000").exists()  # fix plumed's cut, kept
    for name in ("HILLS", "COLVAR"):
        a = read_plumed_table(folder / name).data
        b = read_plumed_table(reference / name).data
        assert a.shape == b.shape, name  # no hill or row lost or repeated
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9, err_msg=name)
    steps_a, coords_a = _frames(folder / "traj.dump")
    steps_b, coords_b = _frames(reference / "traj.dump")
    assert steps_a == steps_b == list(range(0, STEPS + 1, 100))
    np.testing.assert_allclose(coords_a, coords_b, atol=1e-6)
    sittings = json.loads((folder / "sittings.json").read_text())
    assert [int(s) for s in sittings] == [500, 1000, 1500]  # checked steps before the end, again
    assert 0 < resumed.seconds < 10 * whole.seconds  # the first sitting's time to step 1 000 counted


def test_other_settings_start_afresh(tmp_path):
    """A folder whose run had other settings is not resumed: a new run, old restarts gone."""
    other = tmp_path / "other"
    run_metadynamics(replace(_config(other), steps=1500))
    assert sorted(restart_files(other)) == [500, 1000, 1500]
    run = run_metadynamics(replace(_config(other), seed=7, steps=1000))
    assert run.steps_run == 1000 and sorted(restart_files(other)) == [500, 1000]
    assert _frames(other / "traj.dump")[0] == list(range(0, 1001, 100))


def test_a_longer_budget_carries_the_run_on(tmp_path):
    """A run that ran out of its budget, run again with a longer one, continues from its
    restart files and ends as the run done in one with the longer budget, also when its
    settings were recorded as an older latentcv did (the budget in the fingerprint)."""
    folder, reference = tmp_path / "run", tmp_path / "whole"
    short = replace(_config(folder), steps=1000)
    run_metadynamics(short)
    (folder / "run.json").write_text(json.dumps({"fingerprint": short.fingerprint(budget=1000)}))
    carried = run_metadynamics(_config(folder))
    whole = run_metadynamics(_config(reference))
    assert carried.steps_run == whole.steps_run == STEPS
    assert (folder / "log.from500.lammps").exists()  # resumed, not started again
    for name in ("HILLS", "COLVAR"):
        a, b = read_plumed_table(folder / name).data, read_plumed_table(reference / name).data
        assert a.shape == b.shape, name
        # the same trajectory: round-off after the restart grows ~5x per 100 chaotic steps
        # to ~1e-5 by the end (another trajectory differs at order 1)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)
    steps_a, coords_a = _frames(folder / "traj.dump")
    steps_b, coords_b = _frames(reference / "traj.dump")
    assert steps_a == steps_b == list(range(0, STEPS + 1, 100))
    np.testing.assert_allclose(coords_a[:11], coords_b[:11], atol=1e-9)  # to step 1 000: exact
    np.testing.assert_allclose(coords_a, coords_b, atol=1e-3)
    assert json.loads((folder / "run.json").read_text())["fingerprint"] == _config(folder).fingerprint()
