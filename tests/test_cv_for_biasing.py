"""The pieces that make n_crystal a CV for biasing: interface frames, per-molecule ten
Wolde targets, the bond-order features, the independent judge, and `latentcv compare`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentcv.cv_models.analysis.crystallinity import first_crystallisation, freud_solid
from latentcv.cv_models.analysis.cv_quality import lattice_frame
from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, molecule_labels, ten_wolde_frame
from latentcv.cv_models.data.dataset import Dataset
from latentcv.cv_models.data.frames import CRYSTAL, MELT, UNLABELED, Frame
from latentcv.cv_models.graphs import neighbor_list
from latentcv.cv_models.layers import AngularMoments
from latentcv.cv_models.systems import METAD_DEFAULTS


def half_crystal_frame(seed: int = 0) -> Frame:
    """fcc lattice whose upper half (z > L/2) is replaced by uniformly random points."""
    f = lattice_frame("fcc", 4, noise=0.03, seed=seed)
    rng = np.random.default_rng(seed)
    top = f.positions[:, 2] > f.cell[2, 2] / 2
    f.positions[top] = rng.uniform(0, 1, size=(int(top.sum()), 3)) * np.diag(f.cell) * [1, 1, 0.5] + [
        0,
        0,
        f.cell[2, 2] / 2,
    ]
    return f


def test_bond_order_features_tell_a_lattice_from_a_gas():
    """s̄ of a perfect fcc environment is 12/13 (12 fully correlated neighbours, the
    self term 1 in the norm); a random gas of the same density is far below."""
    layer = AngularMoments(1, 4, channels=1, degrees=[6], bond_order=True).double()
    with torch.no_grad():  # radial weights: a constant 1 per pair (the bond order is normalised anyway)
        for p in layer.rho.parameters():
            p.zero_()
        layer.rho.lin_edge.bias.fill_(1.0)

    def sbar(frame: Frame) -> np.ndarray:
        pos = torch.tensor(frame.positions)
        cell = torch.tensor(frame.cell)
        ei, sh = neighbor_list(pos, cell, 1.3)
        d = pos[ei[1]] + sh @ cell - pos[ei[0]]
        w = torch.ones(d.shape[0], dtype=torch.float64)
        rbf = torch.ones(d.shape[0], 4, dtype=torch.float64)
        out = layer(torch.zeros(len(pos), 1, dtype=torch.float64), ei, d, rbf, w)
        return out[:, 2].detach().numpy()  # [q0, q6, s̄, s²̄] with one channel and one degree

    fcc = lattice_frame("fcc", 3)
    s_fcc = sbar(fcc)
    assert layer.out_dim == 4
    np.testing.assert_allclose(s_fcc, 12 / 13, atol=1e-9)
    rng = np.random.default_rng(1)
    gas = Frame(
        positions=rng.uniform(0, 1, (108, 3)) * np.diag(fcc.cell),
        cell=fcc.cell,
        molecule=np.arange(108),
        species=np.zeros(108, np.int64),
    )
    assert np.mean(sbar(gas)) < 0.4


def test_ten_wolde_labels_of_a_half_crystal_and_freud_agrees():
    f = half_crystal_frame()
    labels = molecule_labels(f, TenWoldeConfig(cutoff=1.5))
    crystal = f.positions[:, 2] < f.cell[2, 2] / 2
    assert labels.dtype == np.int64 and labels[crystal].mean() > 0.85 and labels[~crystal].mean() < 0.15
    # an independent implementation (freud's SolidLiquid) labels every particle the same
    np.testing.assert_array_equal(freud_solid(f, 1.5), labels.astype(bool))


def test_molecule_labels_survive_a_dataset_round_trip(tmp_path):
    a, b = lattice_frame("fcc", 2), half_crystal_frame()
    b.molecule_labels = molecule_labels(b)
    ds = Dataset([a, b])
    ds.save(tmp_path / "d.npz")
    back = list(Dataset.load(tmp_path / "d.npz"))
    assert back[0].molecule_labels is None
    np.testing.assert_array_equal(back[1].molecule_labels, b.molecule_labels)


def test_training_samples_carry_per_molecule_targets():
    from latentcv.cv_models.batching import collate, prepare_samples
    from latentcv.cv_models.training import assign_molecule_labels

    crystal, interface = lattice_frame("fcc", 3), half_crystal_frame()
    crystal.label, interface.label = CRYSTAL, UNLABELED
    frames = [crystal, interface]
    s = prepare_samples(frames, 1, 1.5, torch.float64)
    assert s[1]["mol_labels"].tolist() == [UNLABELED] * interface.n_molecules  # "frame": nothing to learn there
    assign_molecule_labels(frames, "ten_wolde", 1.5, neighbours=0)  # the labels over a cutoff
    s = prepare_samples(frames, 1, 1.5, torch.float64)
    np.testing.assert_array_equal(s[1]["mol_labels"].numpy(), molecule_labels(interface))
    assert set(s[1]["mol_labels"].tolist()) == {MELT, CRYSTAL}
    batch = collate(s, torch.device("cpu"))
    assert batch["mol_labels"].shape[0] == crystal.n_molecules + interface.n_molecules


def test_first_crystallisation_needs_the_hold():
    steps = np.arange(0, 20001, 1000)
    frac = np.where(steps >= 8000, 0.9, 0.1)
    frac[10] = 0.5  # a dip at step 10000: the hold restarts after it
    hit = first_crystallisation(steps, frac, 0.8, 5000)
    assert hit.step == 11000
    assert first_crystallisation(steps, frac, 0.8, 10000).step is None  # 11000 + 10000 is past the run
    assert first_crystallisation(steps, np.full(len(steps), 0.2)).step is None


def test_interface_runs_cover_a_range_of_crystal(tmp_path):
    """Slab and sphere seeds in their melt: UNLABELED frames in an elongated box whose
    solid fraction lies strictly between the melt and the crystal."""
    from latentcv.cv_models.generate import GeneratorConfig, generate

    cfg = GeneratorConfig(
        system="lj",
        n_cells=3,
        phases=("interface",),
        replicas=1,
        interface_steps=200,
        interface_every=100,
        interface_seeds=(("slab", 0.5, 0.70), ("sphere", 0.4, 0.56)),
        chunk_steps=0,
    )
    ds = generate(cfg, tmp_path, progress=False)
    assert sorted(ds.trajectories) == ["lj-interface-slab0.5-T0.7-0", "lj-interface-sphere0.4-T0.56-0"]
    slab = ds.by_trajectory()["lj-interface-slab0.5-T0.7-0"]
    assert len(slab) == 3 and all(f.label == UNLABELED for f in slab)
    assert slab[0].cell[2, 2] > 1.5 * slab[0].cell[0, 0]  # 3 x 3 x 6 cells
    solid = ten_wolde_frame(slab[0], TenWoldeConfig(cutoff=1.5)).solid_fraction
    assert 0.2 < solid < 0.8


def test_plumed_input_scales_the_sigma_of_an_extensive_count(tmp_path):
    from latentcv.export.plumed_input import PlumedInputOptions, plumed_input
    from tests.export_helpers import save_model_with_hints

    import re

    model = save_model_with_hints(
        tmp_path / "m.pt",
        sigma_hint=[0.1, 0.1, 0.1, 0.1, 2.0, 1.0],
        extra={"sigma_hint_molecules": "100.0", "extensive_outputs": "n_crystal"},
    )

    def sigma(atoms: str) -> float:
        text = plumed_input(model, PlumedInputOptions(atoms=atoms, cv="n_crystal", temp=0.58))
        return float(re.search(r"METAD ARG=cv.n_crystal SIGMA=(\S+)", text).group(1))

    meta_molecules, stds = 100.0, 2 * METAD_DEFAULTS.sigma_melt_stds  # the hint 2.0 is half a melt std
    assert sigma("1-100") == pytest.approx(stds * 2.0 * np.sqrt(100 / meta_molecules))
    assert sigma("1-400") == pytest.approx(stds * 2.0 * np.sqrt(400 / meta_molecules))


def test_compare_writes_a_table_from_real_runs(tmp_path):
    """A tiny `latentcv compare` on ENERGY (no model needed): calibration, two seeds in
    one worker, the judge, the table and the plot."""
    from latentcv.cv_models.app.compare import CompareConfig, compare, metad_input

    cfg = CompareConfig(
        cvs=("energy",),
        seeds=(1, 2),
        cells=3,
        steps=1000,
        calibration_steps=500,
        dump_every=250,
        check_every=500,
        hold_steps=500,
        workers=1,
        out=str(tmp_path / "cmp"),
    )
    text = metad_input(cfg.validate(), "energy", 108, 3.0, tmp_path)
    height = f"HEIGHT={METAD_DEFAULTS.height_kt * 0.58:.6g}"
    assert "e: ENERGY" in text and f"METAD ARG=e SIGMA=3 {height} PACE=200 BIASFACTOR=30" in text
    table = compare(cfg, log=lambda *_: None)
    assert "| energy |" in table and "0/2" in table  # 1000 steps are far too few to crystallise
    runs = (tmp_path / "cmp" / "runs.json").read_text()
    assert '"steps_run": 1000' in runs
    assert (tmp_path / "cmp" / "compare.png").stat().st_size > 5000
    with pytest.raises(ValueError, match="model file"):
        CompareConfig(cvs=("latent",), model=str(tmp_path / "none.pt")).validate()


def test_compare_runs_opes_and_keeps_its_runs_apart(tmp_path):
    """`compare --method opes`: OPES_METAD with BARRIER = barrier_kt kT, its kernels written;
    the WT-METAD runs of the same folder are not mixed into its table."""
    from latentcv.cv_models.app.compare import CompareConfig, compare

    common = dict(cvs=("energy",), seeds=(1,), cells=3, steps=500, calibration_steps=500, dump_every=250)
    common.update(check_every=500, hold_steps=500, workers=1, out=str(tmp_path / "cmp"))
    compare(CompareConfig(**common), log=lambda *_: None)
    table = compare(CompareConfig(**common, method="opes", barrier_kt=20), log=lambda *_: None)
    assert "metad: METAD ARG=e" in (tmp_path / "cmp" / "runs" / "energy-seed1" / "plumed.dat").read_text()  # kept
    plumed = (tmp_path / "cmp" / "runs" / "energy-opes-seed1" / "plumed.dat").read_text()
    assert "metad: OPES_METAD ARG=e SIGMA=" in plumed and "BARRIER=11.6 PACE=200 TEMP=0.58" in plumed  # 20 × 0.58
    assert "OPES_METAD PACE 200, BARRIER 20 kT" in table and table.count("| energy |") == 1
    kernels = (tmp_path / "cmp" / "runs" / "energy-opes-seed1" / "HILLS").read_text()
    assert "#! FIELDS time e sigma_e height logweight" in kernels
    with pytest.raises(ValueError, match="--method"):
        CompareConfig(cvs=("energy",), method="abf").validate()


def test_a_finished_run_is_reused_whatever_barrier_a_metad_run_recorded():
    """BARRIER changes an OPES run, not a METAD one: a METAD run saved with any barrier_kt
    (or none) is reused; an OPES run only with its own."""
    from latentcv.cv_models.app.compare import CompareConfig, _run_key, _same_key

    metad, opes = CompareConfig(), CompareConfig(method="opes")
    saved = {**_run_key(metad), "barrier_kt": 30.0}
    assert _same_key(saved, metad) and _same_key(_run_key(metad), CompareConfig(barrier_kt=7.0))
    assert _same_key(_run_key(opes), opes) and not _same_key({**_run_key(opes), "barrier_kt": 30.0}, opes)
    assert not _same_key(saved, opes) and not _same_key(None, metad)


def test_a_finished_run_is_reused_under_a_longer_budget_only_when_it_stopped_within_it():
    """A run that crystallised within the new budget, or ran to exactly it, is the same run;
    one that ran out of a shorter budget is carried on (not reused); other settings or SIGMA
    never match."""
    from latentcv.cv_models.app.compare import CompareConfig, _finished_within, _run_key

    old = CompareConfig(steps=60000)
    crystallised = {"key": _run_key(old), "sigma": 2.0, "steps_run": 40000, "crystallised_at": 35000}
    ran_out = {"key": _run_key(old), "sigma": 2.0, "steps_run": 60000, "crystallised_at": None}
    longer, shorter = CompareConfig(steps=120000), CompareConfig(steps=30000)
    kept = _finished_within(crystallised, longer, 2.0)
    assert kept is not None and kept["key"]["steps"] == 120000 and kept["crystallised_at"] == 35000
    assert _finished_within(ran_out, longer, 2.0) is None  # carried on from its restart files
    assert _finished_within(ran_out, old, 2.0) is not None  # its own budget
    assert _finished_within(crystallised, shorter, 2.0) is None  # stopped past a shorter budget
    assert _finished_within(crystallised, longer, 3.0) is None  # another SIGMA
    assert _finished_within(crystallised, CompareConfig(steps=120000, height_kt=1.0), 2.0) is None


def test_compare_q6_on_molecule_centers():
    """For molecules, PLUMED's Q6 runs on CENTER virtual atoms, one per molecule."""
    from latentcv.cv_models.app.compare import CompareConfig, cv_lines

    cfg = CompareConfig(system="trimers", cells=2, cvs=("q6",)).validate()
    lines, arg = cv_lines(cfg, "q6", cfg.n_atoms)
    assert cfg.n_molecules == 64 and cfg.n_atoms == 192 and arg == "q6.vmean"
    assert lines[0] == "m1: CENTER ATOMS=1-3" and lines[63] == "m64: CENTER ATOMS=190-192"
    assert lines[64].startswith("q6: Q6 SPECIES=m1,m2,") and lines[64].count(",m") == 63


def test_refine_runs_a_round_end_to_end(tmp_path):
    """`latentcv refine`: export → biased run → harvest → fine-tune → re-export, tiny."""
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.generate import GeneratorConfig, generate
    from latentcv.cv_models.training import train_from_config

    gen = GeneratorConfig.preset("tiny", "lj", phases=("crystal", "melt"), replicas=2)
    generate(gen, tmp_path / "data", progress=False).save(tmp_path / "lj.npz")
    (tmp_path / "train.toml").write_text(
        '[data]\ndataset = "lj.npz"\nn_blocks = 2\nval_fraction = 0.5\nmolecule_labels = "ten_wolde"\n'
        "[model]\nhidden = 8\nrbf = 4\nstage2_hidden = 8\nmolecule_latent = 4\n"
        '[training]\nepochs = 1\noutput_dir = "train"\nprogress = false\n'
    )
    ck = train_from_config(str(tmp_path / "train.toml"))
    out = tmp_path / "refine"
    assert (
        main(
            [
                "refine",
                str(tmp_path / "train.toml"),
                str(ck),
                "--rounds",
                "1",
                "--seeds",
                "1",
                "--steps",
                "500",
                "--epochs",
                "1",
                "--cells",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = (out / "refine.md").read_text()
    assert "| 1 | 2 |" in report  # round 1 harvested the 2 frames dumped at steps 0 and 500
    assert (out / "round1" / "model.pt").stat().st_size > 10_000
    ck1 = out / "round1" / "train" / "checkpoint.pt"
    from latentcv.cv_models.checkpoint import load_checkpoint

    a, b = load_checkpoint(ck), load_checkpoint(ck1)
    assert b["config"]["training"]["init_from"] == str(ck.resolve())
    assert any(not torch.equal(a["model_state"][k], b["model_state"][k]) for k in a["model_state"])  # fine-tuned


@pytest.mark.parametrize("system", ["lj", "dimers", "trimers"])
def test_every_system_has_a_runnable_metadynamics_input(system, tmp_path):
    """examples/<system>/metad.lmp (used by compare, refine, the demo and the tutorial)
    prepares the melt and dumps frames of whole molecules; here unbiased and short."""
    from latentcv.cv_models.data import read_lammps_dump
    from latentcv.cv_models.engines import open_lammps
    from latentcv.cv_models.generate import run_input
    from latentcv.cv_models.systems import SYSTEMS

    spec = SYSTEMS[system]
    v = dict(
        examples=spec.template_dir,
        ncells=2,
        steps=200,
        melt=100,
        equil=50,
        bias="no",
        every=100,
        dump=tmp_path / "traj.dump",
        **({"quench": 50} if system != "lj" else {}),
    )
    lmp = open_lammps(variables=v)
    try:
        timings = run_input(lmp, spec.template_dir / "metad.lmp", chunk_steps=0)
    finally:
        lmp.close()
    assert timings[-1][0] == 200
    frames = read_lammps_dump(tmp_path / "traj.dump", units="lj")
    assert len(frames) == 3 and frames[0].n_molecules == spec.n_molecules(2)
    assert frames[0].atoms_per_molecule == spec.atoms_per_molecule
