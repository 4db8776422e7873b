"""Layers: TorchScript round trip, permutation equivariance/invariance, E(3) behaviour,
smoothness when an edge's switch weight goes to zero."""

import pytest
import torch

from latentcv.cv_models import layers as L
from tests.invariance import rotation, script_roundtrip

torch.set_num_threads(1)
D = torch.float64
N, F, E_DIM, E = 7, 8, 5, 16


def graph(seed=0, dtype=D):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F, generator=g, dtype=dtype)
    ei = torch.randint(0, N, (2, E), generator=g)
    ea = torch.randn(E, E_DIM, generator=g, dtype=dtype)
    w = torch.rand(E, generator=g, dtype=dtype)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    return x, ei, ea, w, batch


CONVS = {
    "mp_sum": lambda: L.MessagePassing(F, E_DIM, F, "sum"),
    "mp_mean": lambda: L.MessagePassing(F, E_DIM, F, "mean"),
    "mp_max": lambda: L.MessagePassing(F, E_DIM, F, "max"),
    "attention": lambda: L.AttentionMessagePassing(F, E_DIM, F, 2),
}
POOLS = ["mean", "sum", "attention", "diffpool"]


@pytest.mark.parametrize("name", list(CONVS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_conv_script_and_permutation(name, dtype, tmp_path):
    torch.manual_seed(0)
    layer = CONVS[name]().to(dtype)
    x, ei, ea, w, _ = graph(dtype=dtype)
    script_roundtrip(layer, (x, ei, ea, w), tmp_path, atol=1e-12 if dtype == D else 1e-6)
    perm = torch.randperm(N)
    inv = torch.argsort(perm)
    out = layer(x, ei, ea, w)
    out_p = layer(x[perm], inv[ei], ea, w)
    torch.testing.assert_close(out_p, out[perm], atol=1e-10 if dtype == D else 1e-5, rtol=0)


@pytest.mark.parametrize("name", ["mp_sum", "mp_mean", "attention"])
def test_conv_smooth_edge_removal(name):
    """An edge with weight 0 is the same as no edge (so a pair leaving the cutoff is smooth)."""
    torch.manual_seed(0)
    layer = CONVS[name]().double()
    x, ei, ea, w, _ = graph()
    w = w.clone()
    w[3] = 0.0
    keep = torch.arange(E) != 3
    torch.testing.assert_close(layer(x, ei, ea, w), layer(x, ei[:, keep], ea[keep], w[keep]), atol=1e-14, rtol=0)


def test_egnn_equivariance(tmp_path):
    torch.manual_seed(0)
    layer = L.EGNNLayer(F, E_DIM, 16).double()
    x, ei, ea, w, _ = graph()
    pos = torch.randn(N, 3, dtype=D)
    script_roundtrip(layer, (x, pos, ei, ea, w), tmp_path)
    rot = torch.tensor(rotation(3, reflect=True))
    t = torch.randn(3, dtype=D)
    h1, x1 = layer(x, pos, ei, ea, w)
    h2, x2 = layer(x, pos @ rot.T + t, ei, ea, w)
    torch.testing.assert_close(h2, h1, atol=1e-12, rtol=0)
    torch.testing.assert_close(x2, x1 @ rot.T + t, atol=1e-12, rtol=0)


def test_angular_moments_invariant_and_exact(tmp_path):
    torch.manual_seed(0)
    layer = L.AngularMoments(F, E_DIM, 3, 6).double()
    x, ei, ea, w, _ = graph()
    vec = torch.randn(E, 3, dtype=D)
    script_roundtrip(layer, (x, ei, vec, ea, w), tmp_path)
    rot = torch.tensor(rotation(5, reflect=True))
    torch.testing.assert_close(layer(x, ei, vec @ rot.T, ea, w), layer(x, ei, vec, ea, w), atol=1e-12, rtol=0)
    # against the pair-sum formula for one node (addition theorem: sum_m Y_lm Y_lm = P_l)
    from numpy.polynomial import legendre

    node = int(ei[0, 0])
    sel = ei[0] == node
    rho = layer.rho(x, ei[0], ei[1], ea) * w.unsqueeze(-1)
    u = vec / vec.norm(dim=1, keepdim=True)
    cos = (u[sel] @ u[sel].T).numpy()
    deg = w[sel].sum()
    ref = []
    for c in range(3):
        r = rho[sel, c].detach().numpy()
        ref.append([r.sum() * (1 + float(deg))] + [r @ legendre.legval(cos, [0] * l + [1]) @ r for l in (2, 4, 6)])
    ref = torch.tensor(ref, dtype=D) / (1 + deg) ** 2
    got = layer(x, ei, vec, ea, w)[node]
    torch.testing.assert_close(torch.cat([got[:3, None], got[3:].view(3, 3)], 1), ref, atol=1e-12, rtol=0)
    # finite gradients even for axis-aligned bonds (zero components)
    v0 = torch.eye(3, dtype=D).repeat(6, 1)[:E].clone().requires_grad_(True)
    layer(x, ei, v0, ea, w).sum().backward()
    assert torch.isfinite(v0.grad).all()


@pytest.mark.parametrize("degrees", [[6], [2, 4, 6], [1, 3]])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_angular_moments_equal_core_torch_path(degrees, dtype, tmp_path):
    """latentcv's fused operators (cv_models/native/ops.py) give the core-torch path's values and
    gradients (every input), eager and scripted, including a zero-length bond."""
    torch.manual_seed(1)
    layer = L.AngularMoments(F, E_DIM, 3, degrees=degrees, bond_order=True).to(dtype)
    assert layer.fused, "the fused operators are built by `make build`"
    x, ei, ea, w, _ = graph(seed=3, dtype=dtype)
    vec = torch.randn(E, 3, dtype=dtype)
    vec[2] = 0.0
    _assert_fused_equals_core_torch(layer, lambda a, b, c, d: layer(a, ei, b, c, d), (x, vec, ea, w))
    script_roundtrip(layer, (x, ei, vec, ea, w), tmp_path)


def _assert_fused_equals_core_torch(layer, call, inputs) -> None:
    """``call(*inputs)`` with ``layer.fused`` on and off: equal values and gradients of every
    input (1e-12 in float64, 2e-5 in float32); leaves the layer fused."""
    results = []
    for fused in (True, False):
        layer.fused = fused
        leaves = [a.clone().requires_grad_(True) for a in inputs]
        out = call(*leaves)
        weights = torch.cos(torch.arange(out.numel(), dtype=out.dtype)).view_as(out)
        results.append((out, torch.autograd.grad((out * weights).sum(), leaves)))
    layer.fused = True
    tol = dict(atol=1e-12, rtol=1e-12) if out.dtype == torch.float64 else dict(atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(results[0][0], results[1][0], **tol)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_attention_equals_core_torch_path(dtype, tmp_path):
    """The attention layer with node values: latentcv's attention_aggregate = gather,
    product and scatter in core torch (values and the gradient of every input)."""
    torch.manual_seed(2)
    layer = L.AttentionMessagePassing(F, E_DIM, F, 2, edge_values=False, attention_hidden=0).to(dtype)
    assert layer.fused
    x, ei, ea, w, _ = graph(seed=5, dtype=dtype)
    _assert_fused_equals_core_torch(layer, lambda a, b, c: layer(a, ei, b, c), (x, ea, w))
    script_roundtrip(layer, (x, ei, ea, w), tmp_path)
    g = torch.Generator().manual_seed(6)
    values = torch.randn(5, 2, 3, generator=g, dtype=D, requires_grad=True)
    alpha = torch.rand(20, 2, generator=g, dtype=D, requires_grad=True)
    pairs = torch.randint(0, 5, (2, 20), generator=g)
    assert torch.autograd.gradcheck(lambda v, a: torch.ops.latentcv.attention_aggregate(v, a, pairs), (values, alpha))


SPHERE_RADIUS, SPHERE_RAMP = 2.0, 0.8


def sphere_frame(dtype=D):
    """u [a], centres [a, 3] and a triclinic cell [3, 3] for sphere_mass: 24 random molecules
    (some outside the cell) and 4 more at r = radius - ramp and r = radius (+- 1e-7) from the
    first four."""
    g = torch.Generator().manual_seed(7)
    cell = torch.tensor([[6.0, 0.0, 0.0], [1.1, 5.5, 0.0], [-0.7, 0.9, 5.8]], dtype=D)
    x = (1.4 * torch.rand(24, 3, generator=g, dtype=D) - 0.2) @ cell
    direction = torch.nn.functional.normalize(torch.randn(4, 3, generator=g, dtype=D), dim=1)
    r_on = SPHERE_RADIUS - SPHERE_RAMP
    r = torch.tensor([r_on - 1e-7, r_on + 1e-7, SPHERE_RADIUS - 1e-7, SPHERE_RADIUS + 1e-7], dtype=D)
    x = torch.cat([x, x[:4] + r[:, None] * direction])
    u = torch.rand(x.shape[0], generator=g, dtype=D)
    return u.to(dtype), x.to(dtype), cell.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_sphere_mass_equals_core_torch_path(dtype, tmp_path):
    """LargestNucleus's pair sum: latentcv's sphere_mass = the core-torch [a, a, 3] sum (value
    and the gradients of u, centres and a triclinic cell, pairs at r = radius - ramp and at
    r = radius included), alone and through the layer, eager and scripted."""
    layer = L.LargestNucleus(SPHERE_RADIUS, SPHERE_RAMP, sharpness=0.5)
    assert layer.fused
    u, x, cell = sphere_frame(dtype)
    results = []
    for mass in (
        lambda a, b, c: torch.ops.latentcv.sphere_mass(a, b, c, SPHERE_RADIUS, SPHERE_RAMP),
        layer.sphere_mass_reference,
    ):
        leaves = [t.clone().requires_grad_(True) for t in (u, x, cell)]
        out = mass(*leaves)
        weights = torch.cos(torch.arange(out.numel(), dtype=dtype))
        results.append((out, torch.autograd.grad((out * weights).sum(), leaves)))
    assert results[0][0].dtype == dtype
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == torch.float64 else dict(atol=2e-5, rtol=2e-5)
    for a, b in zip([results[0][0], *results[0][1]], [results[1][0], *results[1][1]]):
        torch.testing.assert_close(a, b, **tol)
    # the layer: shares (some below the floor and within the C1 step), two frames (the first
    # with the pairs at the radii)
    share = torch.where(u < 0.3, 0.5 * u, u)
    batch = ((torch.arange(u.shape[0]) >= 12) & (torch.arange(u.shape[0]) < 24)).long()
    cells = torch.stack([cell, 1.1 * cell])
    call = lambda s, c, h: layer(s, c, h, batch, 2)  # noqa: E731
    _assert_fused_equals_core_torch(layer, call, (share, x, cells))
    script_roundtrip(layer, (share, x, cells, batch, 2), tmp_path, atol=1e-12 if dtype == D else 1e-5)


def test_fused_operators_gradcheck_and_errors():
    """The analytic backward of each operator against finite differences; bad indices and
    a second derivative are refused, not silently wrong."""
    layer = L.AngularMoments(F, E_DIM, 2, degrees=[2, 6], bond_order=True).double()
    za = layer.harmonics.matrix.double()
    g = torch.Generator().manual_seed(4)
    vec = torch.randn(20, 3, generator=g, dtype=D, requires_grad=True)
    rho = torch.randn(20, 2, generator=g, dtype=D, requires_grad=True)
    receiver = torch.randint(0, 5, (20,), generator=g)
    moments = lambda v, r: torch.ops.latentcv.shell_moments(v, r, receiver, 5, za, layer.xy_column)  # noqa: E731
    assert torch.autograd.gradcheck(moments, (vec, rho))
    tn = torch.randn(5, 2, za.shape[1], generator=g, dtype=D, requires_grad=True)
    wt = torch.rand(20, generator=g, dtype=D, requires_grad=True)
    ei = torch.randint(0, 5, (2, 20), generator=g)
    bond = lambda a, b: torch.ops.latentcv.bond_order_sums(a, ei, b, layer.degree_of_column, 2)  # noqa: E731
    assert torch.autograd.gradcheck(bond, (tn, wt))
    with pytest.raises(RuntimeError, match="outside"):
        torch.ops.latentcv.shell_moments(vec, rho, receiver, 3, za, layer.xy_column)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(moments(vec, rho).square().sum(), vec, create_graph=True)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(bond(tn, wt)[1].sum(), tn, create_graph=True)
    # pair geometry: 6 nodes in two frames; every differentiable output feeds the loss
    centers = torch.rand(6, 3, generator=g, dtype=D).mul(2.0).requires_grad_(True)
    cells = (torch.eye(3, dtype=D) * 2.0 + 0.1 * torch.rand(2, 3, 3, generator=g, dtype=D)).requires_grad_(True)
    frame = torch.tensor([0, 0, 0, 1, 1, 1])
    pairs = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 3], [1, 2, 2, 0, 4, 5, 3, 5]])
    shift = torch.randint(-1, 2, (8, 3), generator=g).to(D)
    mu = torch.linspace(0.0, 2.5, 5, dtype=D)

    def geometry(c, h):
        out = torch.ops.latentcv.pair_geometry(c, h, frame, pairs, shift, 2.5, 1.0, mu, 0.6)
        return out[2], out[3], out[4], out[5]

    assert torch.autograd.gradcheck(geometry, (centers, cells))
    with pytest.raises(RuntimeError, match="outside"):
        torch.ops.latentcv.pair_geometry(centers, cells, frame, pairs + 6, shift, 2.5, 1.0, mu, 0.6)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(geometry(centers, cells)[1].square().sum(), centers, create_graph=True)
    # sphere mass: a triclinic cell, molecules outside it
    u, x, cell = (t.requires_grad_(True) for t in sphere_frame()[:3])
    sphere = lambda a, b, c: torch.ops.latentcv.sphere_mass(a, b, c, SPHERE_RADIUS, SPHERE_RAMP)  # noqa: E731
    assert torch.autograd.gradcheck(sphere, (u[:24], x[:24], cell))
    with pytest.raises(RuntimeError, match="centers must be"):
        sphere(u, x[:5], cell)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(sphere(u, x, cell).square().sum(), x, create_graph=True)


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pool_script_and_permutation(kind, dtype, tmp_path):
    torch.manual_seed(0)
    pool = L.make_pool(kind, F, 3).to(dtype)
    x, _, _, _, batch = graph(dtype=dtype)
    sm = torch.jit.script(pool)
    torch.jit.save(sm, str(tmp_path / "p.pt"))
    loaded = torch.jit.load(str(tmp_path / "p.pt"))
    ref = pool(x, batch, 2)
    torch.testing.assert_close(loaded(x, batch, 2), ref, atol=1e-12 if dtype == D else 1e-6, rtol=0)
    perm = torch.randperm(N)
    torch.testing.assert_close(pool(x[perm], batch[perm], 2), ref, atol=1e-10 if dtype == D else 1e-5, rtol=0)
    assert ref.shape == (2, pool.out_dim)


def test_diffpool_coarsened_adjacency_and_topk():
    torch.manual_seed(0)
    x, ei, _, w, batch = graph()
    dp = L.DiffPool(F, 2).double()
    a = dp.coarsen_adjacency(x, ei, w, batch, 2)
    assert a.shape == (2, 2, 2)
    torch.testing.assert_close(a.sum(), w.sum())  # rows of S sum to 1
    tk = L.TopKPool(F, 0.5).double()
    assert tk(x, batch, 2).shape == (2, F)


def test_inner_product_decoder(tmp_path):
    z = torch.randn(5, 3, dtype=D)
    pairs = torch.tensor([[0, 1, 2], [1, 2, 4]])
    dec = L.InnerProductDecoder()
    script_roundtrip(dec, (z, pairs), tmp_path)
    torch.testing.assert_close(dec.prob(z, pairs), torch.sigmoid((z[pairs[0]] * z[pairs[1]]).sum(-1)))


def test_solid_harmonics_exact():
    """Both evaluation paths give the real harmonics of the addition theorem."""
    from numpy.polynomial import legendre

    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 3, generator=g, dtype=D)
    b = torch.randn(20, 3, generator=g, dtype=D)
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    degrees = [1, 2, 3, 4, 6]
    for unit in (False, True):
        sh = L.SolidHarmonics(degrees, unit=unit).double()
        ya, yb = sh(a), sh(b)
        for n, l in enumerate(degrees):
            got = (ya * yb)[:, sh.degree == n].sum(1)
            ref = torch.tensor(legendre.legval((a * b).sum(1).numpy(), [0] * l + [1]), dtype=D)
            torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    # the general path is a homogeneous polynomial: |u|^l scaling
    sh = L.SolidHarmonics([2, 4]).double()
    torch.testing.assert_close(sh(2.0 * a)[:, :5], 4.0 * sh(a)[:, :5], atol=1e-12, rtol=0)


def test_the_fused_choice_is_made_in_one_place(monkeypatch):
    """use_fused (cv_models/layers/fused.py) decides for the encoder and every layer with
    fused operators: without the built library none of them uses them, and a layer that
    requires them names the fix."""
    from latentcv.cv_models.config import ModelConfig
    from latentcv.cv_models.layers import fused
    from latentcv.cv_models.model import HierarchicalEncoder
    from latentcv.cv_models.native.paths import MissingNativeFile

    def build():
        return (
            HierarchicalEncoder(ModelConfig(atoms_per_molecule=1, hidden=8, rbf=4, stage2_hidden=8)),
            L.AngularMoments(F, E_DIM, 3, 6),
            L.AttentionMessagePassing(F, E_DIM, F, 2, edge_values=False),
            L.LargestNucleus(2.0, 0.8),
        )

    built = fused.use_fused()
    assert [m.fused for m in build()] == [built] * 4
    monkeypatch.setattr(fused, "ops_available", lambda: False)

    def missing() -> None:
        raise MissingNativeFile("liblatentcv_ops.so could not be loaded. Run `make build`")

    monkeypatch.setattr(fused, "load_ops", missing)
    modules = build()
    assert [m.fused for m in modules] == [False] * 4
    assert all(isinstance(m.kernels, L.NoFusedKernels) for m in modules)
    with pytest.raises(MissingNativeFile, match="make build"):
        L.AngularMoments(F, E_DIM, 3, 6, fused=True)
    assert not L.AttentionMessagePassing(F, E_DIM, F, 2, fused=False).fused
