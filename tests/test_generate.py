"""The LAMMPS data generator (latentcv.cv_models.generate), tiny preset."""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models.analysis import TenWoldeConfig, ten_wolde_frame
from latentcv.cv_models.data import CRYSTAL, MELT, UNLABELED, Dataset, split_by_blocks
from latentcv.cv_models.generate import GeneratorConfig, generate, main
from latentcv.cv_models.systems import SYSTEMS

LABELS = {"crystal": CRYSTAL, "melt": MELT, "transition": UNLABELED}


@pytest.fixture(scope="module", params=["lj", "dimers", "trimers"])
def tiny(request, tmp_path_factory):
    cfg = GeneratorConfig.preset("tiny", request.param)
    out = tmp_path_factory.mktemp(request.param)
    return cfg, out, generate(cfg, out, progress=False)


def test_tiny_preset_frames(tiny):
    cfg, out, ds = tiny
    spec = SYSTEMS[cfg.system]
    n_mol = spec.n_molecules(cfg.n_cells)
    assert ds.trajectories == [f"{cfg.system}-{p}-0" for p in cfg.phases]
    for name, frames in ds.by_trajectory().items():
        phase = name.split("-")[1]
        assert (out / f"{name}.data").exists() and (out / f"{name}.dump").exists()
        prod = cfg.transition_steps if phase == "transition" else cfg.prod_steps
        assert [f.timestep for f in frames] == list(range(0, prod + 1, cfg.dump_every))
        assert [f.index for f in frames] == list(range(len(frames)))
        for f in frames:
            assert f.label == LABELS[phase] and f.length_unit == "lj"
            assert f.positions.shape == (n_mol * spec.atoms_per_molecule, 3) and f.cell.shape == (3, 3)
            assert f.n_molecules == n_mol and f.atoms_per_molecule == spec.atoms_per_molecule
            assert (f.species == 0).all()
    if cfg.system == "dimers":
        f = ds[0]
        assert f.bonds.tolist() == [[0, 1]]
        bond = np.linalg.norm(f.positions[1::2] - f.positions[::2], axis=1)  # whole molecules
        assert np.all(np.abs(bond - 0.3) < 0.1)
    if cfg.system == "trimers":
        f = ds[0]
        assert f.bonds.tolist() == [[0, 1], [1, 2]]
        p = f.positions.reshape(-1, 3, 3)  # whole, straight rods of length 1.0
        assert np.all(np.abs(np.linalg.norm(p[:, 2] - p[:, 0], axis=1) - 1.0) < 0.15)


def test_tiny_trimers_orientational_order(tiny):
    """The trimer crystal is orientationally ordered, its melt is not."""
    cfg, _, ds = tiny
    if cfg.system != "trimers":
        pytest.skip("orientational order of the trimers")
    from latentcv.cv_models.analysis.orientation import orientation_frame

    cut = SYSTEMS["trimers"].tenwolde_cutoff
    order = {name: [orientation_frame(f, cut) for f in fr] for name, fr in ds.by_trajectory().items()}
    crystal, melt = order["trimers-crystal-0"], order["trimers-melt-0"]
    assert min(o.nematic for o in crystal) > 0.8 and max(o.nematic for o in melt) < 0.3
    assert min(o.mean_local_p2 for o in crystal) > 0.8 > 0.4 > max(o.mean_local_p2 for o in melt)


def test_tiny_phases_by_ten_wolde(tiny):
    """Even the tiny runs give a crystal that is crystal and a melt that is liquid."""
    cfg, _, ds = tiny
    if cfg.system == "trimers":
        pytest.skip("6 in-layer neighbours: ten Wolde (>= 8 solid bonds) reads the trimer crystal as liquid")
    tw = TenWoldeConfig(cutoff=SYSTEMS[cfg.system].tenwolde_cutoff)
    solid = {
        name: np.mean([ten_wolde_frame(f, tw).solid_fraction for f in fr]) for name, fr in ds.by_trajectory().items()
    }
    assert solid[f"{cfg.system}-crystal-0"] > 0.95
    assert solid[f"{cfg.system}-melt-0"] < 0.1


def test_split_of_generated_data(tiny):
    _, _, ds = tiny
    train, val = split_by_blocks(ds, n_blocks=7, val_fraction=0.3, seed=0)
    assert len(train) + len(val) == len(ds)
    assert set(val.labels().tolist()) >= {CRYSTAL, MELT}


def test_chunked_runs_match_one_run(tmp_path):
    """Splitting `run` into chunks for the progress bar does not change the trajectory."""
    cfg = GeneratorConfig.preset(
        "tiny",
        "lj",
        phases=("melt",),
        melt_steps=200,
        quench_steps=200,
        equil_steps=100,
        prod_steps=200,
        dump_every=100,
    )
    one = generate(cfg, tmp_path / "one", progress=False)
    many = generate(GeneratorConfig(**{**cfg.__dict__, "chunk_steps": 70}), tmp_path / "many", progress=False)
    assert len(one) == len(many) == 3
    for a, b in zip(one, many):
        assert a.timestep == b.timestep
        assert np.allclose(a.positions, b.positions, atol=1e-8) and np.allclose(a.cell, b.cell, atol=1e-10)


def test_config_errors_and_cli(tmp_path):
    with pytest.raises(ValueError, match="transition"):
        GeneratorConfig.preset("tiny", "dimers", phases=("transition",)).runs()
    with pytest.raises(ValueError, match="preset"):
        GeneratorConfig.preset("huge")
    main(
        [
            "lj",
            str(tmp_path),
            "--preset",
            "tiny",
            "--phases",
            "crystal",
            "--prod-steps",
            "100",
            "--save",
            str(tmp_path / "frames.npz"),
        ]
    )
    ds = Dataset.load(tmp_path / "frames.npz")
    assert len(ds) == 3 and ds[0].label == CRYSTAL


def test_reuse_reads_existing_files(tmp_path):
    cfg = GeneratorConfig.preset("tiny", "lj", phases=("crystal",))
    first = generate(cfg, tmp_path, progress=False)
    stamp = (tmp_path / "lj-crystal-0.dump").stat().st_mtime_ns
    again = generate(cfg, tmp_path, progress=False, reuse=True)
    assert (tmp_path / "lj-crystal-0.dump").stat().st_mtime_ns == stamp
    assert np.allclose(first[-1].positions, again[-1].positions)
    generate(GeneratorConfig.preset("tiny", "lj", phases=("crystal",), seed=2), tmp_path, progress=False, reuse=True)
    assert (tmp_path / "lj-crystal-0.dump").stat().st_mtime_ns != stamp  # config changed: rerun


def test_tiny_trimer_interface(tmp_path):
    """The trimer interface protocol: a half-crystal slab of whole molecules in its melt."""
    from latentcv.cv_models.analysis.orientation import orientation_frame

    cfg = GeneratorConfig.preset(
        "tiny", "trimers", phases=("interface",), interface_seeds=(("slab", 0.5, 1.4),), interface_steps=200
    )
    ds = generate(cfg, tmp_path, progress=False)
    assert ds.trajectories == ["trimers-interface-slab0.5-T1.4-0"] and len(ds) == 3
    f = ds[-1]
    assert f.label == UNLABELED and f.n_molecules == 8 * 3 * 3 * 6 and f.atoms_per_molecule == 3
    ordered = (orientation_frame(f, SYSTEMS["trimers"].tenwolde_cutoff).local_p2 > 0.7).mean()
    assert 0.3 < ordered < 0.75


def test_interface_melt_steps_per_system():
    """The trimers' interface liquid melts for the system's longer time, LJ keeps 1000 steps,
    and the config's override wins (no LAMMPS run: the runs' variables)."""
    from latentcv.cv_models.generate import run_steps

    def melt_steps(system: str, **overrides) -> list[int]:
        runs = GeneratorConfig(system=system, n_cells=3, phases=("interface",), **overrides).runs()
        assert runs and all(r["phase"] == "interface" for r in runs)
        return [r["variables"]["melt"] for r in runs]

    trimers = SYSTEMS["trimers"].interface_melt_steps
    assert trimers > 1000
    assert melt_steps("trimers") == [trimers] * len(SYSTEMS["trimers"].interface_seeds)
    assert set(melt_steps("trimers", interface_melt_steps=1500)) == {1500}
    assert set(melt_steps("lj")) == set(melt_steps("dimers")) == set(melt_steps("mw")) == {1000}
    assert set(melt_steps("lj", interface_melt_steps=2500)) == {2500}
    run = GeneratorConfig(system="trimers", n_cells=3, phases=("interface",), interface_steps=700).runs()[0]
    assert run_steps(run) == 1000 + 2 * trimers + 100 + 700  # equil, melt + cool, relax, prod
    with pytest.raises(ValueError, match="interface_melt_steps"):
        melt_steps("lj", interface_melt_steps=-1)
