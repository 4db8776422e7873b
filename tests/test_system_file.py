"""The user's own system (cv_models/system_file.py): a system file naming a LAMMPS data file,
force field, state point and judge runs through the one metadynamics runner and through
`latentcv compare`; here an argon-like LJ system in `units real`, the LJ system's state point
(T = 0.58 epsilon/k_B, P = 1 epsilon/sigma^3) in K and atm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latentcv.cv_models.app.metad_run import MetadRunConfig, run_metadynamics
from latentcv.cv_models.data import read_lammps_dump
from latentcv.cv_models.data.plumed_table import read_plumed_table
from latentcv.cv_models.systems import METAD_DEFAULTS
from latentcv.cv_models.synthetic import fcc_positions, liquid_positions
from latentcv.cv_models.system_file import load_system_file, metad_system
from latentcv.export.plumed_input import KB_KJ_PER_MOL_K

SIGMA, EPS, MASS = 3.405, 0.2381, 39.948  # A, kcal/mol, g/mol (argon)
KB_KCAL = KB_KJ_PER_MOL_K / 4.184  # kcal/(mol K)
TEMP = round(0.58 * EPS / KB_KCAL, 3)  # K, 69.494
PRESS = EPS * 4184.0 / 6.02214076e23 / (SIGMA * 1e-10) ** 3 / 101325.0  # atm, ~413
CUTOFF = 1.5 * SIGMA  # the judge's (the LJ system's ten Wolde cutoff)


def write_data(path: Path, positions: np.ndarray, cell: np.ndarray) -> Path:
    """An `atom_style atomic` LAMMPS data file of one atom type (argon's mass)."""
    rows = [f"{k + 1} 1 {x:.10g} {y:.10g} {z:.10g}" for k, (x, y, z) in enumerate(positions)]
    head = [f"argon-like LJ, {len(positions)} atoms", "", f"{len(positions)} atoms", "1 atom types", ""]
    box = [f"0 {cell[i, i]:.10g} {a}lo {a}hi" for i, a in enumerate("xyz")]
    path.write_text("\n".join(head + box + ["", "Masses", "", f"1 {MASS}", "", "Atoms # atomic", ""] + rows) + "\n")
    return path


def write_system(folder: Path, data: Path, **over) -> Path:
    """A system file for ``data`` (relative to ``folder``); ``over``: keys replaced (None: dropped)."""
    keys = dict(
        name="argon",
        data_file=data.name,
        units="real",
        force_field=f"pair_style lj/cut {2.5 * SIGMA:g}\npair_coeff 1 1 {EPS} {SIGMA}\npair_modify shift yes",
        temperature=TEMP,
        pressure=round(PRESS, 2),
        timestep=10.0,  # fs: 0.0046 tau, the LJ system's 0.005 tau
        judge="ten_wolde",
        judge_cutoff=CUTOFF,
        melt_temperature=round(2.0 * EPS / KB_KCAL, 1),  # the LJ system's T = 2 melt
        melt_steps=400,
        quench_steps=200,
        equil_steps=200,
    )
    keys.update(over)
    text = "".join(f"{k} = {_toml(v)}\n" for k, v in keys.items() if v is not None)
    (folder / "argon.toml").write_text(text)
    return folder / "argon.toml"


def _toml(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return f"'''\n{v}\n'''" if isinstance(v, str) and "\n" in v else repr(v).replace("'", '"')


@pytest.fixture
def lattice_system(tmp_path) -> Path:
    """108 atoms on an fcc lattice at the LJ melt's starting density 0.85 sigma^-3: melted by the protocol."""
    x, cell = fcc_positions(3, (4 / 0.85) ** (1 / 3) * SIGMA)
    return write_system(tmp_path, write_data(tmp_path / "argon.data", x, cell))


def test_a_user_system_in_real_units_runs_and_is_judged(lattice_system, tmp_path):
    """Melt (240 K) → cool → equilibrate at 69.5 K, 413 atm → 400 steps of WT-METAD on
    ENERGY (PLUMED in kJ/mol through fix plumed): the energy per atom is that of the LJ
    melt, the dump is read in A and judged by ten Wolde at 1.5 sigma: a melt."""
    system = load_system_file(lattice_system)
    target = metad_system(system)
    assert (target.n_atoms, target.units, target.criterion, target.temperature) == (108, "real", "ten_wolde", TEMP)
    folder = tmp_path / "run"
    kt = KB_KJ_PER_MOL_K * TEMP
    plumed = (
        f"e: ENERGY\nmetad: METAD ARG=e SIGMA=5 HEIGHT={kt:.4f} PACE=50 BIASFACTOR=10 TEMP={TEMP} "
        f"FILE={folder}/HILLS\nPRINT ARG=e,metad.bias STRIDE=50 FILE={folder}/COLVAR\n"
    )
    cfg = MetadRunConfig(folder, plumed, system=system, steps=400, dump_every=100, hold_steps=200, progress=False)
    run = run_metadynamics(cfg)
    assert run.biased and run.steps_run == 400 and run.steps == [0, 100, 200, 300, 400]
    assert max(run.fraction) < 0.3 and run.crystallised_at is None  # the lattice melted
    assert "read_data" in (folder / "system.lmp").read_text()
    e = read_plumed_table(folder / "COLVAR").column("e")
    per_atom = e / 108 / (EPS * 4.184)  # in epsilon
    assert len(e) == 9 and -6.5 < per_atom.mean() < -4.5, per_atom  # the LJ melt at T = 0.58: ~ -5.4
    assert len(read_plumed_table(folder / "HILLS").data) == 8
    frame = read_lammps_dump(run.dump, units="real")[-1]
    assert frame.length_unit == "A" and 15 < frame.cell[0, 0] < 20  # ~17.3 A: the melt's density


def test_a_bad_system_file_names_the_key(lattice_system):
    folder, data = lattice_system.parent, lattice_system.parent / "argon.data"
    cases = {
        r"unknown key\(s\) \['temprature'\]: the keys are data_file, units": dict(temprature=70.0),
        r"missing key\(s\) \['judge'\]": dict(judge=None),
        "judge = 'q6': one of ten_wolde, local_p2, chill_plus": dict(judge="q6"),
        "units = 'si': one of lj, real, metal": dict(units="si"),
        "temperature = '70' must be a number": dict(temperature="70"),
        "judge_cutoff = -1.0 must be > 0": dict(judge_cutoff=-1.0),
        "melt_temperature = 0.0 .* or already_melt = true": dict(melt_temperature=0.0),
        "data_file = .*nothing.data' not found": dict(data_file="nothing.data"),
        "exactly one of force_field .* and force_field_file": dict(force_field_file="ff.lmp"),
        "atoms_per_molecule = 5 does not divide the 108 atoms": dict(atoms_per_molecule=5, atom_style="bond"),
        "atoms_per_molecule = 2 needs molecule IDs, which atom_style = 'atomic' has not": dict(atoms_per_molecule=2),
    }
    (folder / "ff.lmp").write_text("pair_style lj/cut 8.5\n")
    for message, over in cases.items():
        with pytest.raises(ValueError, match=message):
            load_system_file(write_system(folder, data, **over))
    with pytest.raises(FileNotFoundError, match="pass --system-file"):
        load_system_file(folder / "none.toml")
    with pytest.raises(ValueError, match="unknown system 'argon'.*--system-file"):
        metad_system("argon")


def test_compare_runs_on_a_user_system(tmp_path):
    """`latentcv compare --system-file`: a data file that is already a melt (random points
    pushed apart), 1 seed x 500 steps of the energy CV, end to end; PLUMED's Q6 on it
    switches in nm, HEIGHT is 1 kT in kJ/mol."""
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.app.compare import CompareConfig, cv_lines

    cell = np.eye(3) * (108 / 0.84) ** (1 / 3) * SIGMA
    x = liquid_positions(108, cell, np.random.default_rng(0), r_min=0.95 * SIGMA) % np.diag(cell)
    system = write_system(
        tmp_path, write_data(tmp_path / "melt.data", x, cell), already_melt=True, melt_temperature=None
    )
    out = tmp_path / "cmp"
    args = ["compare", "--system-file", str(system), "--cvs", "energy", "--first-seed", "2", "--seeds", "1"]
    args += ["--steps", "500"]
    assert main(args + ["--workers", "1", "--out", str(out)]) == 0
    table = (out / "results.md").read_text()
    assert table.startswith("argon: 108 molecules (108 atoms)") and "| energy |" in table and "0/1" in table
    assert "freud ten Wolde solid fraction" in table
    assert '"steps_run": 500' in (out / "runs.json").read_text()
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["energy-seed2"]  # --first-seed 2 --seeds 1
    plumed = (out / "runs" / "energy-seed2" / "plumed.dat").read_text()
    assert f"HEIGHT={METAD_DEFAULTS.height_kt * KB_KJ_PER_MOL_K * TEMP:.6g} " in plumed and f"TEMP={TEMP:g} " in plumed
    assert "e: ENERGY" in (out / "calibration" / "plumed.dat").read_text()  # only the CVs compared
    q6 = CompareConfig(system_file=str(system), cvs=("q6",)).validate()
    assert f"SWITCH={{CUBIC D_0={0.08 * CUTOFF:g} D_MAX={0.1 * CUTOFF:g}}}" in cv_lines(q6, "q6", 108)[0][-1]


def test_refine_runs_on_a_user_system(tmp_path):
    """`latentcv refine --system-file`: a tiny model trained on frames in A (noisy fcc and
    random liquid points), one round: the biased run is the argon system's at its temperature
    in K (HEIGHT 1 kT in kJ/mol), its frames harvested in A, the model fine-tuned."""
    from latentcv.cv_models.app.cli import main
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.data.frames import CRYSTAL, MELT, Frame
    from latentcv.cv_models.training import train_from_config

    rng = np.random.default_rng(1)
    x, cell = fcc_positions(3, (4 / 0.96) ** (1 / 3) * SIGMA)
    liquid = np.eye(3) * (108 / 0.84) ** (1 / 3) * SIGMA

    def frame(k: int, label: int) -> Frame:
        pos = x + rng.normal(scale=0.2, size=x.shape) if label == CRYSTAL else liquid_positions(108, liquid, rng, SIGMA)
        box = cell if label == CRYSTAL else liquid
        zeros = np.zeros(108, dtype=np.int64)
        return Frame(pos, box, np.arange(108), zeros, label=label, length_unit="A", trajectory=f"t{label}", index=k)

    Dataset([frame(k, label) for label in (CRYSTAL, MELT) for k in range(4)]).save(tmp_path / "argon.npz")
    (tmp_path / "train.toml").write_text(
        '[data]\ndataset = "argon.npz"\nn_blocks = 2\nval_fraction = 0.5\nmolecule_labels = "ten_wolde"\n'
        f"label_cutoff = {CUTOFF}\n[model]\ncutoff = {CUTOFF}\nr_on = {0.8 * CUTOFF}\nhidden = 8\nrbf = 4\n"
        'stage2_hidden = 8\nmolecule_latent = 4\n[training]\nepochs = 1\noutput_dir = "train"\nprogress = false\n'
    )
    ck = train_from_config(str(tmp_path / "train.toml"))
    x_melt = liquid_positions(108, liquid, np.random.default_rng(0), r_min=0.95 * SIGMA) % np.diag(liquid)
    data = write_data(tmp_path / "melt.data", x_melt, liquid)
    system = write_system(tmp_path, data, already_melt=True, melt_temperature=None, equil_steps=100)
    out = tmp_path / "refine"
    args = ["refine", str(tmp_path / "train.toml"), str(ck), "--system-file", str(system), "--rounds", "1"]
    assert main(args + ["--seeds", "1", "--steps", "500", "--epochs", "1", "--out", str(out)]) == 0
    report = (out / "refine.md").read_text()
    assert "argon: 108 molecules (108 atoms)" in report and "| 1 | 2 |" in report  # frames of steps 0 and 500
    assert "Judge: freud ten Wolde solid fraction." in report  # the system file's judge scores the frames
    run = out / "round1" / "metad-seed1001"
    assert f"HEIGHT={METAD_DEFAULTS.height_kt * KB_KJ_PER_MOL_K * TEMP:.6g} " in (run / "plumed.dat").read_text()
    assert read_lammps_dump(run / "traj.dump", units="real")[0].length_unit == "A"
    assert (out / "round1" / "train" / "checkpoint.pt").exists()


def test_compare_plumed_lines_in_kj_per_mol_and_nm_outside_units_lj(tmp_path):
    """PLUMED works in kJ/mol and nm under `units real` (fix plumed): mW water's HEIGHT is
    METAD_DEFAULTS.height_kt kT, with k_B x 230 K in kJ/mol, and its Q6 switch 0.8 x 3.5 A .. 3.5 A in nm; LJ stays natural."""
    from latentcv.cv_models.app.compare import CompareConfig, cv_lines, metad_input

    mw = CompareConfig(system="mw", cells=2, cvs=("q6", "energy")).validate()
    height = METAD_DEFAULTS.height_kt * KB_KJ_PER_MOL_K * 230
    assert f"HEIGHT={height:.6g} " in metad_input(mw, "energy", mw.n_atoms, 1.0, tmp_path)
    assert cv_lines(mw, "q6", mw.n_atoms)[0][-1] == "q6: Q6 SPECIES=1-64 SWITCH={CUBIC D_0=0.28 D_MAX=0.35} VMEAN"
    lj = CompareConfig(cells=2, cvs=("q6",)).validate()
    assert cv_lines(lj, "q6", lj.n_atoms)[0][-1] == "q6: Q6 SPECIES=1-32 SWITCH={CUBIC D_0=1.2 D_MAX=1.5} VMEAN"
