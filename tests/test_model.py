"""The hierarchical encoder: symmetry invariance (float64 and float32), smoothness across
D_t and the box boundary, exact gradients (positions and cell), size transferability,
TorchScript round trip, orientational sensitivity."""

import dataclasses

import numpy as np
import pytest
import torch

from latentcv.cv_models.config import ModelConfig
from latentcv.cv_models.graphs import molecule_centers, neighbor_list
from latentcv.cv_models.autoencoder import HierarchicalAutoencoder
from latentcv.cv_models.model import HierarchicalEncoder
from latentcv.cv_models.synthetic import fcc_positions, molecular_frame, skew_cell, synthetic_dataset
from tests.gradcheck import check_gradient
from tests.invariance import check_invariance

torch.set_num_threads(1)
D = torch.float64

SMALL = dict(hidden=8, stage2_hidden=8, rbf=6, moment_channels=2, molecule_latent=4, heads=2)
CONFIGS = {
    "lj": ModelConfig(atoms_per_molecule=1, **SMALL),
    "dimer_egnn_diffpool": ModelConfig(
        atoms_per_molecule=2,
        stage1_layer="egnn",
        stage1_pool="diffpool",
        concat="attention",
        global_pool="mean",
        **SMALL,
    ),
    "trimer_attention": ModelConfig(
        atoms_per_molecule=3,
        stage1_layer="attention",
        stage1_pool="attention",
        global_pool="sum",
        variational=True,
        **SMALL,
    ),
    "dimer_mp_mean": ModelConfig(
        atoms_per_molecule=2, stage1_layer="mp", stage1_aggr="mean", global_pool="diffpool", **SMALL
    ),
}


def encoder(name, dtype=D, seed=0):
    torch.manual_seed(seed)
    cfg = dataclasses.replace(CONFIGS[name], dtype="float64" if dtype == D else "float32")
    return HierarchicalEncoder(cfg).eval()


def frame(a, triclinic=True, seed=0, n_cells=2):
    rng = np.random.default_rng(seed)
    pts, cell = fcc_positions(n_cells, 4 ** (1 / 3))
    if triclinic:
        new = skew_cell(cell)
        pts = pts @ np.linalg.inv(cell) @ new
        cell = new
    pts = pts + rng.normal(size=pts.shape) * 0.08
    f = molecular_frame(pts, cell, a, rng, ordered=False)
    return f.positions, f.cell


def evaluate(enc):
    def fn(pos, cell):
        return enc.evaluate(pos, cell)

    return fn


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_invariance(name, dtype):
    enc = encoder(name, dtype)
    a = enc.atoms_per_molecule
    pos, cell = frame(a, triclinic=True)
    check_invariance(evaluate(enc), pos, cell, a, dtype)


def test_invariance_orthorhombic_scripted():
    enc = torch.jit.script(encoder("dimer_egnn_diffpool"))

    def fn(pos, cell):
        c = enc.molecule_centers(pos, cell)
        ei, sh = neighbor_list(c, cell, enc.get_cutoff())
        return enc(pos, cell, ei, sh)

    pos, cell = frame(2, triclinic=False, seed=3)
    check_invariance(fn, pos, cell, 2, D)


@pytest.mark.parametrize("name", ["lj", "dimer_egnn_diffpool", "trimer_attention"])
def test_script_save_load(name, tmp_path):
    enc = encoder(name)
    pos, cell = (torch.tensor(x) for x in frame(enc.atoms_per_molecule))
    c = enc.molecule_centers(pos, cell)
    ei, sh = neighbor_list(c, cell, enc.cutoff)
    sm = torch.jit.script(enc)
    torch.jit.save(sm, str(tmp_path / "enc.pt"))
    loaded = torch.jit.load(str(tmp_path / "enc.pt"))
    torch.testing.assert_close(loaded(pos, cell, ei, sh), enc(pos, cell, ei, sh), atol=1e-12, rtol=0)
    torch.testing.assert_close(loaded.molecule_centers(pos, cell), c, atol=0, rtol=0)
    assert loaded.output_names() == ["z0", "z1", "n_crystal"]
    assert loaded.get_cutoff() == enc.cutoff and loaded.get_atoms_per_molecule() == enc.atoms_per_molecule
    assert enc(pos, cell, ei, sh).shape == (3,)
    # centres agree with the graphs module
    torch.testing.assert_close(c, molecule_centers(pos, cell, enc.atoms_per_molecule), atol=1e-13, rtol=0)


def _scan(enc, make, ts):
    """value and directional derivative along a path ``make(t) -> (positions, cell, dpos/dt)``."""
    vals, ders = [], []
    for t in ts:
        pos, cell, v = make(t)
        pos = pos.clone().requires_grad_(True)
        out = enc.evaluate(pos, cell)
        s = out[0] + out[-1]
        (g,) = torch.autograd.grad(s, pos)
        vals.append(float(s.detach()))
        ders.append(float((g * v).sum()))
    return np.array(vals), np.array(ders)


def _assert_smooth(ts, vals, ders):
    h = ts[1] - ts[0]
    # trapezoid consistency: a jump in value (or a wrong gradient) breaks it
    trap = vals[1:] - vals[:-1] - 0.5 * h * (ders[1:] + ders[:-1])
    assert np.abs(trap).max() < 50 * h**2 * max(1.0, np.abs(ders).max()), np.abs(trap).max()
    # no jump in the derivative
    assert np.abs(np.diff(ders)).max() < 200 * h * max(1.0, np.abs(ders).max())


@pytest.mark.parametrize("name", ["lj", "dimer_egnn_diffpool"])
def test_smooth_when_pair_crosses_cutoff(name):
    enc = encoder(name)
    a = enc.atoms_per_molecule
    cell = torch.eye(3, dtype=D) * 6.0
    rng = np.random.default_rng(0)
    base = np.array([[1.0, 1.0, 1.0], [2.1, 1.2, 1.1], [1.3, 2.2, 0.9]])
    f = molecular_frame(base, cell.numpy(), a, rng, ordered=False)
    p0 = torch.tensor(f.positions)
    direction = torch.tensor([1.0, 0.2, 0.1], dtype=D)
    direction = direction / direction.norm()
    mover = torch.zeros_like(p0)
    mover[:a] = direction  # molecule 0 walks away from the others, through D_t and r_on

    def make(t):
        return p0 + t * mover, cell, mover

    ts = np.linspace(0.0, 1.6, 321)
    vals, ders = _scan(enc, make, ts)
    assert abs(vals[-1] - vals[0]) > 1e-6  # something did change
    _assert_smooth(ts, vals, ders)


def test_smooth_when_atom_crosses_box_boundary():
    enc = encoder("dimer_egnn_diffpool")
    pos, cell = (torch.tensor(x) for x in frame(2, triclinic=True, seed=1))
    inv = torch.linalg.inv(cell)
    mover = torch.zeros_like(pos)
    mover[0] = cell[0] / cell[0].norm()
    mover[1] = mover[0]

    def make(t):
        p = pos + t * mover
        s = p @ inv
        return (s - torch.floor(s)) @ cell, cell, mover  # wrapped every step, as MD codes do

    ts = np.linspace(0.0, cell[0].norm().item(), 241)
    vals, ders = _scan(enc, make, ts)
    _assert_smooth(ts, vals, ders)


@pytest.mark.parametrize("name", ["lj", "trimer_attention"])
def test_gradients_match_finite_differences(name):
    enc = encoder(name)
    pos, cell = (torch.tensor(x) for x in frame(enc.atoms_per_molecule, triclinic=True, seed=2))
    c = enc.molecule_centers(pos, cell)
    ei, sh = neighbor_list(c, cell, enc.cutoff + 0.3)  # a skin: extra pairs change nothing
    w = torch.tensor([0.7, -1.3, 0.4], dtype=D)

    def f(p, h):
        return (enc(p, h, ei, sh) * w).sum()

    p = pos.clone().requires_grad_(True)
    h = cell.clone().requires_grad_(True)
    gp, gh = torch.autograd.grad(f(p, h), (p, h))

    def value(p: np.ndarray, h: np.ndarray) -> float:
        with torch.no_grad():
            return float(f(torch.from_numpy(p), torch.from_numpy(h)))

    atoms = [divmod(int(k), 3) for k in np.random.default_rng(0).choice(pos.numel(), 12, replace=False)]
    check_gradient(
        value,
        (pos.numpy(), cell.numpy()),
        (gp.numpy(), gh.numpy()),
        eps=1e-5,
        entries=(atoms, list(np.ndindex(3, 3))),
        rtol=1e-6,
        floor=1.0,
        relative_to="numerical",
    )


@pytest.mark.parametrize("name", ["lj", "dimer_egnn_diffpool"])
def test_transferable_to_8x_larger_system(name):
    enc = encoder(name)
    a = enc.atoms_per_molecule
    pos, cell = (torch.tensor(x) for x in frame(a, triclinic=True, seed=4))
    m = pos.shape[0] // a
    small = enc.evaluate(pos, cell)
    # 2x2x2 replica: every molecule keeps its environment
    shifts = torch.tensor([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=D) @ cell
    big = (pos.view(1, m, a, 3) + shifts.view(8, 1, 1, 3)).reshape(-1, 3)
    out = enc.evaluate(big, 2 * cell)
    # z of an intensive pooling is unchanged; n_crystal is extensive (x8)
    torch.testing.assert_close(out[:-1], small[:-1], atol=1e-10, rtol=0)
    torch.testing.assert_close(out[-1], 8 * small[-1], atol=1e-9, rtol=0)


def test_orientation_reaches_the_latent():
    """Same centres, different molecular orientations: only the orientation channels can
    tell them apart (ordered vs plastic crystal)."""
    rng = np.random.default_rng(0)
    pts, cell = fcc_positions(2, 4 ** (1 / 3))
    ordered = molecular_frame(pts, cell, 2, rng, ordered=True)
    plastic = molecular_frame(pts, cell, 2, rng, ordered=False)
    outs = {}
    for ch in (4, 0):
        torch.manual_seed(0)
        cfg = dataclasses.replace(CONFIGS["dimer_egnn_diffpool"], orientation_channels=ch)
        enc = HierarchicalEncoder(cfg)
        outs[ch] = [enc.evaluate(torch.tensor(f.positions), torch.tensor(f.cell)) for f in (ordered, plastic)]
    assert float((outs[4][0] - outs[4][1]).abs().max()) > 1e-4
    # without orientation channels, a perfect lattice of identical rigid dimers looks the same
    torch.testing.assert_close(outs[0][0], outs[0][1], atol=1e-10, rtol=0)


def test_autoencoder_loss_parts():
    torch.manual_seed(0)
    from latentcv.cv_models.batching import collate, prepare_samples

    cfg = dataclasses.replace(CONFIGS["trimer_attention"])
    model = HierarchicalAutoencoder(cfg)
    frames = synthetic_dataset(atoms_per_molecule=3, frames_per_trajectory=1, trajectories_per_phase=1)
    b = collate(prepare_samples(frames, 3, cfg.cutoff, D), torch.device("cpu"))
    w = {"adj": 1.0, "feat": 1.0, "kl": 1.0, "separation": 1.0, "molecule": 1.0}
    total, parts, out = model.loss(b, w, 2, torch.Generator().manual_seed(0))
    assert set(parts) == {"adj", "feat", "kl", "separation", "molecule", "total"}
    assert all(np.isfinite(v) for v in parts.values())
    total.backward()
    assert out.z.shape == (2, 2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_orientation_invariants_equal_core_torch_path(dtype):
    """latentcv's orientation_invariants operator gives the core-torch invariants and the
    same gradients in the orientations, pair directions and their l = 2 harmonics; its
    analytic backward matches finite differences; a second derivative is refused."""
    enc = encoder("dimer_egnn_diffpool", dtype)
    g = torch.Generator().manual_seed(3)
    m, e, c = 7, 40, enc.n_orient
    v, q = torch.randn(m, c, 3, generator=g, dtype=D), torch.randn(m, c, 5, generator=g, dtype=D)
    pairs = torch.randint(0, m, (2, e), generator=g)
    dh, y2 = torch.randn(e, 3, generator=g, dtype=D), torch.randn(e, 5, generator=g, dtype=D)
    weights = torch.randn(e, 5 * c, generator=g, dtype=D)
    results = []
    for fused in (True, False):
        ins = [t.to(dtype).requires_grad_(True) for t in (v, q, dh, y2)]
        if fused:
            out = torch.ops.latentcv.orientation_invariants(torch.cat(ins[:2], -1), pairs, ins[2], ins[3])
        else:
            out = enc.orientation_invariants_reference(ins[0], ins[1], pairs, ins[2], ins[3])
        results.append((out, torch.autograd.grad((out * weights.to(dtype)).sum(), ins)))
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == D else dict(atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(results[0][0], results[1][0], **tol)
    for x, y in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(x, y, **tol)
    if dtype == D:
        vq = torch.cat([v, q], -1).requires_grad_(True)
        op = lambda a, b, y: torch.ops.latentcv.orientation_invariants(a, pairs, b, y)  # noqa: E731
        assert torch.autograd.gradcheck(op, (vq, dh.requires_grad_(True), y2.requires_grad_(True)))
        with pytest.raises(RuntimeError, match="second derivatives"):
            torch.autograd.grad(op(vq, dh, y2).square().sum(), vq, create_graph=True)
        with pytest.raises(RuntimeError, match="outside"):
            op(vq[:3], dh, y2)


@pytest.mark.parametrize("name", ["lj", "dimer_egnn_diffpool"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_pair_geometry_equals_core_torch_path(name, dtype):
    """latentcv's pair_geometry operator (displacements, skin pairs dropped, switch, radial
    basis in one pass) gives the core-torch path's outputs and position / cell gradients,
    for one frame and for two frames batched (each with its own triclinic cell)."""
    enc = encoder(name, dtype)
    assert enc.fused, "the fused operators are built by `make build`"
    a = enc.atoms_per_molecule
    frames = [frame(a, seed=s) for s in (0, 1)]
    pos = [torch.tensor(p, dtype=dtype) for p, _ in frames]
    cells = [torch.tensor(c, dtype=dtype) for _, c in frames]
    pos[1] = pos[1] @ torch.linalg.inv(cells[1]) @ (cells[1] * 1.03)  # a second, different cell
    cells[1] = cells[1] * 1.03
    pairs, shifts, batch, offset = [], [], [], 0
    for b, (p, c) in enumerate(zip(pos, cells)):
        ei, sh = neighbor_list(molecule_centers(p, c, a).double(), c.double(), 1.3 * enc.cutoff)  # with a skin
        pairs.append(ei + offset)
        shifts.append(sh.to(dtype))
        m = p.shape[0] // a
        batch.append(torch.full((m,), b, dtype=torch.long))
        offset += m
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == D else dict(atol=2e-5, rtol=2e-5)
    for n_frames in (1, 2):
        results = []
        for fused in (True, False):
            enc.fused = fused
            p = torch.cat(pos[:n_frames]).requires_grad_(True)
            c = torch.stack(cells[:n_frames]).requires_grad_(True)
            out = enc.encode(
                p,
                c,
                torch.cat(batch[:n_frames]),
                torch.cat(pairs[:n_frames], 1),
                torch.cat(shifts[:n_frames]),
                n_frames,
            )
            total = out.z.sum() + out.n_crystal.sum() + (out.p_logit * torch.cos(out.p_logit)).sum()
            results.append((out, torch.autograd.grad(total, (p, c))))
        enc.fused = True
        (fo, fg), (ro, rg) = results
        assert torch.equal(fo.edge_index, ro.edge_index)
        assert fo.edge_index.shape[1] < torch.cat(pairs[:n_frames], 1).shape[1]  # skin pairs were dropped
        for key in ("z", "n_crystal", "p_logit", "edge_weight", "mol_feat"):
            torch.testing.assert_close(getattr(fo, key), getattr(ro, key), **tol)
        for x, y in zip(fg, rg):
            torch.testing.assert_close(x, y, **tol)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("fused", [True, False])
def test_batched_frames_equal_frames_alone(name, fused):
    """B frames of different sizes and cells encoded in one batch give each frame's outputs
    alone (latent, count, per-molecule heads), on the fused and the core-torch pair paths
    (the latter has its own one-frame and batched image-shift branches)."""
    from latentcv.cv_models.batching import collate, prepare_samples
    from latentcv.cv_models.data.frames import Frame

    enc = encoder(name)
    if not fused:
        enc.fused = False
    a = enc.atoms_per_molecule
    frames = []
    for k, (tri, cells) in enumerate([(True, 2), (False, 2), (True, 3)]):
        pos, cell = frame(a, triclinic=tri, seed=k, n_cells=cells)
        n = pos.shape[0]
        frames.append(
            Frame(
                positions=pos,
                cell=cell,
                molecule=np.arange(n) // a,
                species=np.zeros(n, dtype=np.int64),
                label=k % 2,
                index=k,
            )
        )
    samples = prepare_samples(frames, a, enc.cutoff, D)
    with torch.no_grad():
        b = collate(samples, torch.device("cpu"))
        out = enc.encode(b["positions"], b["cells"], b["mol_batch"], b["edge_index"], b["edge_shift"], len(samples))
        p_batched = torch.split(out.p_logit, [s["n_mol"] for s in samples])
        for k, s in enumerate(samples):
            alone = enc.encode(
                s["positions"],
                s["cell"].unsqueeze(0),
                torch.zeros(s["n_mol"], dtype=torch.long),
                s["edge_index"],
                s["edge_shift"],
                1,
            )
            torch.testing.assert_close(out.z[k], alone.z[0], atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(out.n_crystal[k], alone.n_crystal[0], atol=1e-12, rtol=1e-10)
            torch.testing.assert_close(p_batched[k], alone.p_logit, atol=1e-12, rtol=1e-10)


def test_fused_encoder_traces_with_its_operators_as_calls():
    """torch.compile (AOTAutograd on fake tensors, the fake kernels of
    latentcv.cv_models.native.fake_kernels) traces the fused dimers encoder in one graph:
    forward and backward call latentcv's operators and their backward operators, and the
    traced graph gives the eager values and gradients."""
    import re

    from torch._dynamo.testing import AotEagerAndRecordGraphs

    enc = encoder("dimer_egnn_diffpool")
    pos, cell = (torch.tensor(x) for x in frame(2, triclinic=False))
    with torch.no_grad():
        ei, sh = neighbor_list(enc.molecule_centers(pos, cell), cell, 1.1 * float(enc.cutoff))
    sh = sh.to(pos.dtype)

    def step(module):
        p, c = pos.detach().requires_grad_(True), cell.detach().requires_grad_(True)
        out = module(p, c, ei, sh)
        w = torch.linspace(0.5, 1.5, out.shape[0], dtype=out.dtype)
        return (out.detach(),) + torch.autograd.grad((out * w).sum(), (p, c))

    backend = AotEagerAndRecordGraphs()
    traced = step(torch.compile(enc, backend=backend, fullgraph=True, dynamic=False))
    for a, b in zip(traced, step(enc)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    ops = ["attention_aggregate", "bond_order_sums", "orientation_invariants", "pair_geometry", "shell_moments"]
    forward = set(re.findall(r"latentcv\.(\w+)", "\n".join(g.code for g in backend.fw_graphs)))
    backward = set(re.findall(r"latentcv\.(\w+)", "\n".join(g.code for g in backend.bw_graphs)))
    assert forward == set(ops) and backward == {f"{op}_backward" for op in ops}
    torch._dynamo.reset()
