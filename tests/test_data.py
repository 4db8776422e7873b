"""latentcv data: LAMMPS and mdtraj readers, molecules, Dataset, block split.

A little over 400 lines because it follows the data path of docs/data.md stage by stage
(readers, molecules, dataset, split), one group of cases each."""

from __future__ import annotations

import numpy as np
import pytest

from latentcv.cv_models.data import (
    CRYSTAL,
    MELT,
    UNLABELED,
    Dataset,
    Frame,
    MoleculePatternError,
    SplitConfig,
    make_whole,
    molecule_centers,
    read_frames,
    read_lammps_data,
    read_lammps_dump,
    read_mdtraj,
    split_by_blocks,
    write_lammps_data,
    write_lammps_dump,
)
from latentcv.cv_models.data.molecules import build_layout
from latentcv.cv_models.data.pbc import minimum_image, neighbour_pairs
from latentcv.cv_models.data.split import block_ids

TRICLINIC = np.array([[4.0, 0.0, 0.0], [1.3, 3.7, 0.0], [-0.9, 0.8, 4.2]])


def dimer_frame(cell: np.ndarray, n_mol: int = 12, seed: int = 0, bond: float = 0.3) -> Frame:
    """Whole dimers at random centres in ``cell``; centres near the faces so wrapping splits some."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, 1, size=(n_mol, 3))
    s[: n_mol // 2, 0] = 0.999  # right at a face: one atom wraps to the other side
    centres = s @ cell
    u = rng.normal(size=(n_mol, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    pos = np.stack([centres - 0.5 * bond * u, centres + 0.5 * bond * u], axis=1).reshape(-1, 3)
    return Frame(
        positions=pos,
        cell=cell.copy(),
        molecule=np.repeat(np.arange(n_mol), 2),
        species=np.tile([0, 1], n_mol),
        bonds=np.array([[0, 1]]),
    )


def same_up_to_lattice(a: np.ndarray, b: np.ndarray, cell: np.ndarray, tol: float = 1e-9) -> bool:
    return bool(np.abs(minimum_image(a - b, cell)).max() < tol)


# ----------------------------------------------------------------------------- LAMMPS


def test_dump_and_data_roundtrip_triclinic_molecules_whole(tmp_path):
    ref = dimer_frame(TRICLINIC)
    n = ref.n_atoms
    # scrambled ids: molecule m holds ids (m+1) and (m+1+M), rows written in random order
    m = ref.n_molecules
    ids = np.empty(n, dtype=np.int64)
    ids[0::2] = np.arange(1, m + 1)
    ids[1::2] = np.arange(m + 1, 2 * m + 1)
    frames = [ref, Frame(**{**ref.__dict__, "positions": ref.positions + 0.01, "timestep": 10})]
    write_lammps_dump(tmp_path / "t.dump", frames, origin=(-1.0, 2.0, 0.5), ids=ids)
    write_lammps_data(tmp_path / "t.data", ref, origin=(-1.0, 2.0, 0.5), ids=ids)

    data = read_lammps_data(tmp_path / "t.data")
    assert np.allclose(data.cell, TRICLINIC)
    assert data.bonds.shape == (m, 2)

    out = read_lammps_dump(tmp_path / "t.dump", data_file=tmp_path / "t.data", label=CRYSTAL, trajectory="tri")
    assert len(out) == 2
    f = out[0]
    assert f.label == CRYSTAL and f.trajectory == "tri" and f.index == 0 and f.length_unit == "lj"
    assert np.allclose(f.cell, TRICLINIC, atol=1e-12)
    assert f.bonds.tolist() == [[0, 1]]
    assert f.atoms_per_molecule == 2 and f.n_molecules == m
    assert f.molecule.tolist() == np.repeat(np.arange(m), 2).tolist()
    # molecules whole: bonded atoms at the bond length without any minimum image
    d = np.linalg.norm(f.positions[1::2] - f.positions[0::2], axis=1)
    assert np.allclose(d, 0.3, atol=1e-9)
    # same atoms as the reference (molecule order = order of first id), up to lattice shifts
    assert same_up_to_lattice(f.positions, ref.positions, TRICLINIC)
    assert f.species.tolist() == ref.species.tolist()
    assert same_up_to_lattice(out[1].positions, ref.positions + 0.01, TRICLINIC)
    assert out[1].timestep == 10


def test_dump_reader_against_lammps_triclinic(tmp_path):
    """LAMMPS's own triclinic dumps (x, xs, xu styles) give LAMMPS's coordinates back."""
    from latentcv.cv_models.engines import open_lammps

    lmp = open_lammps()
    for cmd in [
        "units real",
        "atom_style atomic",
        "boundary p p p",
        "region box prism 0 5 0 6 0 7 1.5 -1.0 0.7",
        "create_box 2 box",
        "create_atoms 1 random 40 4321 NULL",
        "create_atoms 2 random 20 8765 NULL",
        "mass * 1.0",
        "displace_atoms all random 3.0 3.0 3.0 99",
        f"write_dump all custom {tmp_path}/a.dump id type x y z",
        f"write_dump all custom {tmp_path}/b.dump id type xs ys zs",
        f"write_dump all custom {tmp_path}/c.dump id type xu yu zu",
        f"write_dump all custom {tmp_path}/d.dump id type x y z ix iy iz modify sort id format float %.12g",
    ]:
        lmp.command(cmd)
    x = np.array(lmp.numpy.extract_atom("x")[:60], dtype=np.float64)
    ids = np.array(lmp.numpy.extract_atom("id")[:60])
    types = np.array(lmp.numpy.extract_atom("type")[:60])
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lmp.close()
    cell = np.array([[boxhi[0] - boxlo[0], 0, 0], [xy, boxhi[1] - boxlo[1], 0], [xz, yz, boxhi[2] - boxlo[2]]])
    order = np.argsort(ids)
    x, types = x[order], types[order]
    for name in "abcd":
        (f,) = read_lammps_dump(tmp_path / f"{name}.dump", units="real")
        assert f.length_unit == "A"
        assert np.allclose(f.cell, cell, atol=1e-5)
        assert f.species.tolist() == (types - 1).tolist()
        assert same_up_to_lattice(f.positions, x, cell, tol=1e-4), name


def test_generator_style_dump_mol_column_and_read_frames(tmp_path):
    ref = dimer_frame(np.diag([5.0, 5.0, 5.0]))
    write_lammps_dump(tmp_path / "dump.x", [ref])
    (f,) = read_frames(tmp_path / "dump.x", label=MELT)  # mol column → molecules
    assert f.atoms_per_molecule == 2 and f.label == MELT
    assert np.allclose(np.linalg.norm(f.positions[1::2] - f.positions[0::2], axis=1), 0.3)
    (g,) = read_lammps_dump(tmp_path / "dump.x", atoms_per_molecule=2)
    assert np.allclose(g.positions, f.positions)


def test_molecule_pattern_errors_and_species_reordering():
    species = np.array([0, 1, 1, 1, 0, 1])  # O H H | H O H: reordered to O H H
    lay = build_layout(np.array([0, 0, 0, 1, 1, 1]), species)
    assert species[lay.order].tolist() == [0, 1, 1, 0, 1, 1]
    with pytest.raises(MoleculePatternError, match="different sizes"):
        build_layout(np.array([0, 0, 1, 1, 1]), np.zeros(5, int))
    with pytest.raises(MoleculePatternError, match="species"):
        build_layout(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
    with pytest.raises(MoleculePatternError, match="bonds"):
        # molecule 0: chain 0-1-2; molecule 1: chain 3-5-4 → local bonds differ
        build_layout(np.array([0, 0, 0, 1, 1, 1]), np.zeros(6, int), np.array([[0, 1], [1, 2], [3, 5], [5, 4]]))


def test_make_whole_triclinic_chain():
    cell = TRICLINIC
    rng = np.random.default_rng(3)
    start = rng.uniform(0, 4, size=(5, 3))
    steps = rng.normal(size=(5, 3, 3)) * 0.4
    chain = np.concatenate([start[:, None], start[:, None] + np.cumsum(steps, axis=1)], axis=1)  # [5, 4, 3]
    wrapped = chain.reshape(-1, 3) @ np.linalg.inv(cell)
    wrapped = (wrapped - np.floor(wrapped)) @ cell
    whole = make_whole(wrapped, cell, 4, np.array([[0, 1], [1, 2], [2, 3]])).reshape(5, 4, 3)
    assert np.allclose(np.diff(whole, axis=1), steps)


def test_molecule_centers_are_the_means_of_whole_molecules_triclinic():
    """The NumPy centres (the encoder's, through graphs.py) equal the plain mean of each
    unwrapped molecule, up to a lattice vector, for molecules split across faces."""
    cell = TRICLINIC
    rng = np.random.default_rng(5)
    start = rng.uniform(0, 4, size=(6, 3))
    steps = np.cumsum(rng.normal(size=(6, 2, 3)) * 0.4, axis=1)
    chain = start[:, None] + np.concatenate([np.zeros((6, 1, 3)), steps], axis=1)  # [6, 3, 3]
    frac = chain.reshape(-1, 3) @ np.linalg.inv(cell)
    wrapped = (frac - np.floor(frac)) @ cell
    got = molecule_centers(wrapped, cell, 3)
    n = (got - chain.mean(axis=1)) @ np.linalg.inv(cell)
    assert np.allclose(n, np.round(n), atol=1e-10)
    naive = (wrapped.reshape(6, 3, 3).mean(axis=1) - chain.mean(axis=1)) @ np.linalg.inv(cell)
    assert not np.allclose(naive, np.round(naive), atol=1e-3)  # some molecules are split: not vacuous


# ----------------------------------------------------------------------------- mdtraj


def _mdtraj_dimers(n_mol: int = 6, n_frames: int = 3):
    import mdtraj as md

    top = md.Topology()
    chain = top.add_chain()
    for _ in range(n_mol):
        res = top.add_residue("DIM", chain)
        a = top.add_atom("C1", md.element.carbon, res)
        b = top.add_atom("N1", md.element.nitrogen, res)
        top.add_bond(a, b)
    cell_nm = TRICLINIC / 10.0
    frames = [dimer_frame(TRICLINIC, n_mol, seed=k, bond=1.2) for k in range(n_frames)]
    xyz = np.stack([f.positions for f in frames]) / 10.0
    lengths = np.linalg.norm(cell_nm, axis=1)
    a, b, c = cell_nm
    angles = np.degrees(
        [
            np.arccos(b @ c / lengths[1] / lengths[2]),
            np.arccos(a @ c / lengths[0] / lengths[2]),
            np.arccos(a @ b / lengths[0] / lengths[1]),
        ]
    )
    traj = md.Trajectory(
        xyz, top, unitcell_lengths=np.tile(lengths, (n_frames, 1)), unitcell_angles=np.tile(angles, (n_frames, 1))
    )
    return traj, frames


@pytest.mark.parametrize("fmt", ["pdb", "dcd", "xtc"])
def test_mdtraj_route_units_and_molecules(tmp_path, fmt):
    traj, ref = _mdtraj_dimers()
    traj[0].save_pdb(str(tmp_path / "top.pdb"))
    path = tmp_path / f"t.{fmt}"
    getattr(traj, f"save_{fmt}")(str(path))
    top = tmp_path / "top.pdb"
    tol = {"pdb": 2e-4, "dcd": 1e-5, "xtc": 2e-3}[fmt]  # nm: PDB 3 decimals in A, XTC 1e-3 nm
    out = read_mdtraj(path, top, label=CRYSTAL)
    assert len(out) == 3 and out[0].length_unit == "nm" and out[0].label == CRYSTAL
    f = out[1]
    assert np.allclose(f.cell, TRICLINIC / 10.0, atol=tol)
    assert f.species.tolist() == [0, 1] * 6  # C → 0, N → 1 (sorted symbols)
    assert f.bonds.tolist() == [[0, 1]]
    assert same_up_to_lattice(f.positions, ref[1].positions / 10.0, f.cell, tol=tol * 2)
    assert np.allclose(np.linalg.norm(f.positions[1::2] - f.positions[::2], axis=1), 0.12, atol=tol * 2)
    # units: Angstrom, and "lj" = the numbers stored in the file
    (fa,) = read_mdtraj(path, top, length_unit="A", stride=3)
    assert fa.length_unit == "A" and np.allclose(fa.positions, out[0].positions * 10.0)
    (fl,) = read_mdtraj(path, top, length_unit="lj", stride=3)
    assert np.allclose(fl.positions, out[0].positions * (1.0 if fmt == "xtc" else 10.0))
    # molecules from bonds or from a count give the same layout here
    for how in ("bonds", 2):
        g = read_mdtraj(path, top, molecules=how)[1]
        assert np.allclose(g.positions, f.positions)


def test_mdtraj_without_box_is_an_error(tmp_path):
    traj, _ = _mdtraj_dimers()
    traj.unitcell_vectors = None
    traj.save_pdb(str(tmp_path / "nobox.pdb"))
    with pytest.raises(ValueError, match="periodic"):
        read_mdtraj(tmp_path / "nobox.pdb")


# ----------------------------------------------------------------------------- Dataset, split


def _toy_dataset() -> Dataset:
    ds = Dataset()
    for name, label, n in [("c0", CRYSTAL, 50), ("m0", MELT, 37), ("t0", UNLABELED, 3), ("c1", CRYSTAL, 1)]:
        for k in range(n):
            ds.frames.append(
                Frame(
                    np.zeros((1, 3)) + k,
                    np.eye(3),
                    np.zeros(1, np.int64),
                    np.zeros(1, np.int64),
                    label=label,
                    trajectory=name,
                    index=k,
                )
            )
    return ds


def test_split_whole_blocks_deterministic():
    ds = _toy_dataset()
    cfg = SplitConfig(n_blocks=5, val_fraction=0.4, seed=7)
    train, val = split_by_blocks(ds, cfg)
    assert len(train) + len(val) == len(ds)
    for name, frames in ds.by_trajectory().items():
        blocks = block_ids(len(frames), cfg.n_blocks)
        vset = {f.index for f in val if f.trajectory == name}
        for b in np.unique(blocks):
            members = {f.index for f in frames if blocks[f.index] == b}
            assert members <= vset or not (members & vset), f"block {b} of {name} is split"
        if len(frames) >= 2:
            assert vset and len(vset) < len(frames)  # both sides get every trajectory
        else:
            assert not vset  # a one-frame trajectory cannot be split
    # deterministic, independent of the dataset's trajectory order
    again = split_by_blocks(Dataset(list(reversed(ds.frames))), cfg)[1]
    key = lambda d: sorted((f.trajectory, f.index) for f in d)  # noqa: E731
    assert key(again) == key(val)
    other = split_by_blocks(ds, cfg, seed=8)[1]
    assert key(other) != key(val)
    assert {CRYSTAL, MELT} <= set(val.labels().tolist())


def test_split_gap_drops_training_frames_next_to_validation():
    ds = _toy_dataset()
    train, val = split_by_blocks(ds, n_blocks=5, val_fraction=0.2, gap=2, seed=1)
    for name in ("c0", "m0"):
        vi = sorted(f.index for f in val if f.trajectory == name)
        ti = [f.index for f in train if f.trajectory == name]
        assert min(abs(t - v) for t in ti for v in vi) >= 3


def test_dataset_save_load(tmp_path):
    ref = dimer_frame(TRICLINIC)
    ds = Dataset([ref, Frame(**{**ref.__dict__, "label": MELT, "trajectory": "x", "index": 4, "bonds": None})])
    ds.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    assert len(back) == 2 and back.trajectories == ds.trajectories
    assert np.array_equal(back[0].positions, ref.positions) and back[0].bonds.tolist() == [[0, 1]]
    assert back[1].label == MELT and back[1].index == 4 and back[1].bonds is None


def test_neighbour_pairs_all_images_triclinic():
    """Small skewed box, cutoff above half the box: compare with a brute-force image sum."""
    rng = np.random.default_rng(5)
    cell = np.array([[2.0, 0, 0], [1.7, 1.8, 0], [-0.6, 0.9, 2.1]])
    pts = rng.uniform(0, 1, (7, 3)) @ cell
    rc = 2.3
    i, j, d = neighbour_pairs(pts, cell, rc)
    got = sorted(zip(i.tolist(), j.tolist(), np.round(np.linalg.norm(d, axis=1), 9).tolist()))
    want = []
    rng_n = range(-4, 5)
    for a in range(7):
        for b in range(7):
            for n in [(x, y, z) for x in rng_n for y in rng_n for z in rng_n]:
                if a == b and n == (0, 0, 0):
                    continue
                r = np.linalg.norm(pts[b] + np.array(n) @ cell - pts[a])
                if r < rc:
                    want.append((a, b, round(float(r), 9)))
    assert got == sorted(want)


def test_lammpstrj_with_topology_goes_through_mdtraj(tmp_path):
    traj, ref = _mdtraj_dimers()
    traj[0].save_pdb(str(tmp_path / "top.pdb"))
    write_lammps_dump(tmp_path / "t.lammpstrj", ref)  # numbers in A, as mdtraj assumes (units real)
    out = read_frames(tmp_path / "t.lammpstrj", top=tmp_path / "top.pdb", length_unit="A")
    assert len(out) == 3 and out[0].length_unit == "A"
    assert np.allclose(out[1].cell, TRICLINIC, atol=1e-5)
    assert same_up_to_lattice(out[1].positions, ref[1].positions, TRICLINIC, tol=1e-4)
    # the same file read natively as a LAMMPS dump gives the same frames
    native = read_lammps_dump(tmp_path / "t.lammpstrj", units="real")
    assert np.allclose(native[1].positions, out[1].positions, atol=1e-4)


# ----------------------------------------------------------------------------- phase labels


def test_phase_labels_names_and_integers(tmp_path):
    from latentcv.cv_models.data import read_dataset
    from latentcv.cv_models.data.frames import parse_label

    for value, want in (
        ("crystal", CRYSTAL),
        ("Melt", MELT),
        (" UNLABELED ", UNLABELED),
        (1, CRYSTAL),
        (0, MELT),
        (-1, UNLABELED),
        ("1", CRYSTAL),
        (np.int64(0), MELT),
    ):
        assert parse_label(value) == want, value
    for bad in ("solid", 2, True, 1.0, None):
        with pytest.raises(ValueError, match='"crystal", "melt", "unlabeled"'):
            parse_label(bad)
    f = dimer_frame(np.diag([4.0, 4.0, 4.0]))
    write_lammps_dump(tmp_path / "a.dump", [f])
    write_lammps_data(tmp_path / "a.data", f)
    specs = [
        {"path": str(tmp_path / "a.dump"), "data_file": str(tmp_path / "a.data"), "label": lab, "trajectory": name}
        for name, lab in (("c", "crystal"), ("m", "MELT"), ("u", "unlabeled"), ("c1", 1), ("m0", 0))
    ]
    assert [fr.label for fr in read_dataset(specs)] == [CRYSTAL, MELT, UNLABELED, CRYSTAL, MELT]
    assert read_lammps_dump(tmp_path / "a.dump", label="Crystal")[0].label == CRYSTAL
    with pytest.raises(ValueError, match=r"a\.dump.*'liquid'.*\"crystal\", \"melt\", \"unlabeled\""):
        read_dataset([{"path": str(tmp_path / "a.dump"), "label": "liquid"}])


def test_one_reader_of_plumed_column_files(tmp_path):
    """read_plumed_table reads COLVAR / HILLS / fes.dat alike: the FIELDS names, SET lines
    and a restarted file's repeated header skipped, columns by name; a file that is not a
    complete PLUMED table is refused with its file and line."""
    from latentcv.cv_models.data.plumed_table import read_plumed_table

    path = tmp_path / "COLVAR"
    path.write_text(
        "#! FIELDS time cv.n_crystal metad.bias\n#! SET min_cv 0\n 0.0 1.5 0.0\n\n 0.5 2.5 0.1\n"
        "#! FIELDS time cv.n_crystal metad.bias\n 1.0 3.5 0.2\n"
    )
    fields, data = read_plumed_table(path)
    assert fields == ["time", "cv.n_crystal", "metad.bias"] and data.shape == (3, 3)
    np.testing.assert_array_equal(read_plumed_table(path).column("metad.bias"), [0.0, 0.1, 0.2])
    with pytest.raises(KeyError, match="its columns are time, cv.n_crystal, metad.bias"):
        read_plumed_table(path).column("cv.z0")
    path.write_text("#! FIELDS time e\n")
    assert read_plumed_table(path).data.shape == (0, 2)
    for text, msg in (
        ("#! FIELDS time e\n0 1\n0.5\n", r"COLVAR:3: 1 numbers where the FIELDS line names 2"),
        ("0 1\n", "COLVAR:1: 2 numbers where the FIELDS line names none"),
        ("# nothing\n", "no '#! FIELDS' line"),
        ("#! FIELDS time e\n#! FIELDS time d\n", "COLVAR:2: a second FIELDS header"),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_plumed_table(path)


def test_plumed_files_are_read_only_by_the_one_reader():
    """No module or test parses a PLUMED file by itself (np.loadtxt): read_plumed_table does."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    calls = [
        str(p.relative_to(root))
        for d in ("cv_models", "export", "tests", "benchmarks")
        for p in (root / d).rglob("*.py")
        if "loadtxt" + "(" in p.read_text()
    ]
    assert not calls, calls
