"""Every public layer of ``latentcv.cv_models.layers`` through the model test mixin (tests/model_checks.py): TorchScript script -> save -> load, symmetries, finite
differences, in float64 and float32, on the CPU and on a GPU where torch sees one
(``test_the_checks_run_on_the_gpu`` says, skipped with its reason, when there is none).

``test_every_public_layer_has_a_case`` fails when a name is added to ``layers.__all__``
without a case here (or a stated reason in ``NOT_LAYERS``). Over 400 lines because it holds
one short case class per public layer.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from latentcv.cv_models import layers as L
from tests.invariance import rotation
from tests.model_checks import DEVICES, ModelChecks, Symmetry, relabel_nodes, reorder_edges

torch.set_num_threads(1)
D = torch.float64
N, F, E_DIM, E = 7, 8, 5, 16


def graph(seed: int = 0):
    """x [N, F], edge_index [2, E] (no self loops), edge_attr [E, E_DIM], weights [E] in (0, 1), batch [N]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F, generator=g, dtype=D)
    i = torch.randint(0, N, (E,), generator=g)
    j = (i + torch.randint(1, N, (E,), generator=g)) % N
    ea = torch.randn(E, E_DIM, generator=g, dtype=D)
    w = 0.1 + 0.8 * torch.rand(E, generator=g, dtype=D)
    batch = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    return x, torch.stack([i, j]), ea, w, batch


def vectors(n: int, seed: int) -> Tensor:
    """[n, 3] float64 random vectors (positions, bond vectors)."""
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(seed), dtype=D)


def permutation(n: int, seed: int) -> Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def rows(perm: Tensor):
    """Expected outputs of a node relabelling: every output's rows gathered by ``perm``."""
    return lambda outs: [o[perm] for o in outs]


def seeded(factory):
    torch.manual_seed(0)
    return factory().double()


# ---------------------------------------------------------------------- node layers (x, ei, ea, w)
class EdgeConvChecks(ModelChecks):
    """Layers ``(x [N, F], edge_index, edge_attr, edge_weight) -> [N, F']``: node outputs follow
    a relabelling of the nodes and do not depend on the order of the edges."""

    differentiable = (0, 2, 3)

    def inputs(self) -> tuple:
        x, ei, ea, w, _ = graph()
        return x, ei, ea, w

    def symmetries(self, inputs: tuple):
        perm = permutation(N, 1)
        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, perm, [0], [1]), rows(perm)),
            "edge_order": Symmetry(reorder_edges(inputs, permutation(E, 2), [2, 3], [1])),
        }


class TestMessagePassingSum(EdgeConvChecks):
    def build(self):
        return seeded(lambda: L.MessagePassing(F, E_DIM, F, "sum"))


class TestMessagePassingMean(EdgeConvChecks):
    def build(self):
        return seeded(lambda: L.MessagePassing(F, E_DIM, 6, "mean"))


class TestMessagePassingMax(EdgeConvChecks):
    """``max`` is continuous, not smooth: differentiable at a generic point like this one."""

    def build(self):
        return seeded(lambda: L.MessagePassing(F, E_DIM, F, "max"))


class TestAttentionMessagePassing(EdgeConvChecks):
    def build(self):
        return seeded(lambda: L.AttentionMessagePassing(F, E_DIM, F, 2))


class TestAttentionNodeValuesFused(EdgeConvChecks):
    """Node values and linear logits: latentcv's fused attention_aggregate on the CPU."""

    def build(self):
        return seeded(lambda: L.AttentionMessagePassing(F, E_DIM, F, 2, edge_values=False, attention_hidden=0))


# ---------------------------------------------------------------------- (h, x) layers
class CoordinateLayerChecks(ModelChecks):
    """Layers ``(h, x [N, 3], edge_index, edge_attr, edge_weight) -> (h', x')``: h' invariant and
    x' equivariant under rotations, reflections and translations of x; both follow a node
    relabelling; the order of the edges does not matter."""

    differentiable = (0, 1, 3, 4)

    def inputs(self) -> tuple:
        x, ei, ea, w, _ = graph()
        return x, vectors(N, 9), ei, ea, w

    def symmetries(self, inputs: tuple):
        h, pos, ei, ea, w = inputs
        rot = torch.tensor(rotation(3, reflect=True))
        t = torch.tensor([0.3, -1.1, 2.0], dtype=D)
        perm = permutation(N, 1)

        def moved(outs):
            return [outs[0], outs[1] @ rot.T.to(outs[1]) + t.to(outs[1])]

        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, perm, [0, 1], [2]), rows(perm)),
            "edge_order": Symmetry(reorder_edges(inputs, permutation(E, 2), [3, 4], [2])),
            "rotation_reflection_translation": Symmetry((h, pos @ rot.T + t, ei, ea, w), moved),
        }


class TestEGNNLayer(CoordinateLayerChecks):
    def build(self):
        return seeded(lambda: L.EGNNLayer(F, E_DIM, 16))


class TestStage1BlockEGNN(CoordinateLayerChecks):
    def build(self):
        return seeded(lambda: L.Stage1Block("egnn", F, E_DIM))


class TestStage1BlockMessagePassing(CoordinateLayerChecks):
    def build(self):
        return seeded(lambda: L.Stage1Block("mp", F, E_DIM, "mean"))


class TestStage1BlockAttention(CoordinateLayerChecks):
    def build(self):
        return seeded(lambda: L.Stage1Block("attention", F, E_DIM, heads=2))


# ---------------------------------------------------------------------- angular layers
class AngularMomentsChecks(ModelChecks):
    """``(h, edge_index, edge_vec [E, 3], edge_rbf, edge_weight) -> [N, K]``: invariant under
    rotations and reflections of the bond vectors; node relabelling, edge order."""

    differentiable = (0, 2, 3, 4)

    def inputs(self) -> tuple:
        x, ei, ea, w, _ = graph()
        return x, ei, vectors(E, 4), ea, w

    def symmetries(self, inputs: tuple):
        h, ei, vec, ea, w = inputs
        perm = permutation(N, 1)
        rot = torch.tensor(rotation(5, reflect=True))
        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, perm, [0], [1]), rows(perm)),
            "edge_order": Symmetry(reorder_edges(inputs, permutation(E, 2), [2, 3, 4], [1])),
            "rotation_reflection": Symmetry((h, ei, vec @ rot.T, ea, w)),
        }


class TestAngularMomentsCoreTorch(AngularMomentsChecks):
    def build(self):
        return seeded(lambda: L.AngularMoments(F, E_DIM, 3, 6, fused=False))


class TestAngularMomentsFusedBondOrder(AngularMomentsChecks):
    """latentcv's fused shell_moments and bond_order_sums on the CPU (the core-torch path elsewhere)."""

    def build(self):
        return seeded(lambda: L.AngularMoments(F, E_DIM, 2, degrees=[2, 4, 6], bond_order=True))


class SolidHarmonicsChecks(ModelChecks):
    """``u [E, 3] -> [E, K]``: rows follow the vectors; a rotation or reflection keeps the
    squared norm of each degree's block (sum over m of Y_lm^2)."""

    def inputs(self) -> tuple:
        u = vectors(E, 6)
        return (u / u.norm(dim=1, keepdim=True) if self.unit else u,)

    def symmetries(self, inputs: tuple):
        (u,) = inputs
        degree = self.build().degree

        def per_degree(outs):
            y = outs[0]
            blocks = torch.zeros(y.shape[0], int(degree.max()) + 1, dtype=y.dtype, device=y.device)
            return [blocks.index_add_(1, degree.to(y.device), y * y)]

        perm = permutation(E, 1)
        rot = torch.tensor(rotation(7, reflect=True))
        return {
            "vector_order": Symmetry((u[perm],), rows(perm)),
            "rotation_reflection": Symmetry((u @ rot.T,), per_degree, per_degree),
        }


class TestSolidHarmonics(SolidHarmonicsChecks):
    unit = False

    def build(self):
        return L.SolidHarmonics([1, 2, 3, 4, 6]).double()


class TestSolidHarmonicsUnit(SolidHarmonicsChecks):
    unit = True

    def build(self):
        return L.SolidHarmonics([2, 6], unit=True).double()


# ---------------------------------------------------------------------- MLPs
class TestMLP(ModelChecks):
    def build(self):
        return seeded(lambda: L.MLP([F, 16, 4]))

    def inputs(self) -> tuple:
        return (graph()[0],)

    def symmetries(self, inputs: tuple):
        perm = permutation(N, 1)
        return {"row_order": Symmetry((inputs[0][perm],), rows(perm))}


class TestPairMLP(ModelChecks):
    """``(h, i, j, e) -> [E, out]``: per edge; renaming the nodes changes nothing."""

    differentiable = (0, 3)

    def build(self):
        return seeded(lambda: L.PairMLP(F, E_DIM, 16, 4))

    def inputs(self) -> tuple:
        x, ei, ea, _, _ = graph()
        return x, ei[0], ei[1], ea

    def symmetries(self, inputs: tuple):
        perm = permutation(E, 2)
        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, permutation(N, 1), [0], [1, 2])),
            "edge_order": Symmetry(reorder_edges(inputs, perm, [1, 2, 3]), rows(perm)),
        }


class TestGaussianRBF(ModelChecks):
    def build(self):
        return L.GaussianRBF(6, 2.5).double()

    def inputs(self) -> tuple:
        return (2.5 * torch.rand(E, generator=torch.Generator().manual_seed(3), dtype=D),)

    def symmetries(self, inputs: tuple):
        perm = permutation(E, 1)
        return {"distance_order": Symmetry((inputs[0][perm],), rows(perm))}


# ---------------------------------------------------------------------- poolings and the decoder
class PoolChecks(ModelChecks):
    """``(x, batch, num_graphs) -> [B, F']``: invariant to the order of the nodes."""

    def inputs(self) -> tuple:
        x, _, _, _, batch = graph()
        return x, batch, 2

    def symmetries(self, inputs: tuple):
        perm = permutation(N, 1)
        return {"node_order": Symmetry(relabel_nodes(inputs, perm, [0, 1], []))}


class TestMeanPool(PoolChecks):
    def build(self):
        return L.MeanPool(F).double()


class TestSumPool(PoolChecks):
    def build(self):
        return L.SumPool(F).double()


class TestAttentionPool(PoolChecks):
    def build(self):
        return seeded(lambda: L.AttentionPool(F))


class TestDiffPool(PoolChecks):
    def build(self):
        return seeded(lambda: L.DiffPool(F, 3))


class TestTopKPool(PoolChecks):
    """Analysis only: it picks nodes by a score, so it is not smooth and has no gradient check."""

    test_finite_differences = None

    def build(self):
        return seeded(lambda: L.TopKPool(F, 0.5))


class TestNucleusCount(ModelChecks):
    """``(p [N], edge_index, edge_weight, batch, num_graphs) -> [B]``: blind to node names and
    edge order; p, the weights and nothing else differentiable."""

    differentiable = (0, 2)

    def build(self):
        return L.NucleusCount(0.4, 0.1).double()

    def inputs(self) -> tuple:
        _, ei, _, w, batch = graph()
        p = torch.rand(N, generator=torch.Generator().manual_seed(6), dtype=D)
        return p, ei, w, batch, 2

    def symmetries(self, inputs: tuple):
        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, permutation(N, 1), [0, 3], [1])),
            "edge_order": Symmetry(reorder_edges(inputs, permutation(E, 2), [2], [1])),
        }


class TestLargestNucleus(ModelChecks):
    """``(share [N], centers [N, 3], cells [B, 3, 3], batch, num_graphs) -> [B]``: blind to
    node names, invariant under translations and rotations (of the centres with their
    cell); the shares, centres and cells differentiable (some shares between the floor and
    twice it, where the C¹ step acts)."""

    differentiable = (0, 1, 2)
    fused: bool | None = False  # the core-torch pair sum ([a, a, 3] tensors), the reference

    def build(self):
        return L.LargestNucleus(radius=2.0, ramp=0.8, sharpness=0.5, floor=0.05, fused=self.fused).double()

    def inputs(self) -> tuple:
        _, _, _, _, batch = graph()
        share = torch.tensor([0.9, 0.07, 0.6, 0.02, 0.8, 0.95, 0.3], dtype=D)
        centers = 1.2 * vectors(N, 8)
        cells = torch.stack(
            [torch.eye(3, dtype=D) * 5.0, torch.tensor([[4.5, 0, 0], [0.4, 5.0, 0], [0, 0.3, 4.8]], dtype=D)]
        )
        return share, centers, cells, batch, 2

    def symmetries(self, inputs: tuple):
        share, centers, cells, batch, b = inputs
        q = torch.tensor(rotation(3), dtype=D)
        return {
            "node_relabelling": Symmetry(relabel_nodes(inputs, permutation(N, 1), [0, 1, 3], [])),
            "translation": Symmetry((share, centers + torch.tensor([0.3, -2.0, 7.1], dtype=D), cells, batch, b)),
            "rotation": Symmetry((share, centers @ q.T, cells @ q.T, batch, b)),
        }


class TestLargestNucleusFused(TestLargestNucleus):
    """The pair sum by latentcv's fused sphere_mass on the CPU (the core-torch path elsewhere)."""

    fused = None  # when built, as the other fused cases


class TestInnerProductDecoder(ModelChecks):
    """``(z, pairs [2, P]) -> [P]`` logits: symmetric in (i, j), blind to node names."""

    def build(self):
        return L.InnerProductDecoder()

    def inputs(self) -> tuple:
        x, ei, _, _, _ = graph()
        return x, ei

    def symmetries(self, inputs: tuple):
        z, pairs = inputs
        return {
            "pair_direction": Symmetry((z, pairs.flip(0))),
            "node_relabelling": Symmetry(relabel_nodes(inputs, permutation(N, 1), [0], [1])),
        }


# ---------------------------------------------------------------------- the scatter functions
class ScatterSum(nn.Module):
    def forward(self, src: Tensor, index: Tensor, dim_size: int) -> Tensor:
        return L.scatter_sum(src, index, dim_size)


class ScatterMean(nn.Module):
    def forward(self, src: Tensor, index: Tensor, dim_size: int) -> Tensor:
        return L.scatter_mean(src, index, dim_size)


class Gather(nn.Module):
    def forward(self, x: Tensor, index: Tensor) -> Tensor:
        return L.gather(x, index)


class ScatterChecks(ModelChecks):
    """``(src [E, F], index [E], N) -> [N, F]``: blind to the order of the rows; renaming
    the targets renames the output rows."""

    def inputs(self) -> tuple:
        _, ei, _, _, _ = graph()
        return torch.randn(E, F, generator=torch.Generator().manual_seed(8), dtype=D), ei[0], N

    def symmetries(self, inputs: tuple):
        src, index, n = inputs
        perm = permutation(N, 1)  # target k of the copy is target perm[k]
        return {
            "row_order": Symmetry(reorder_edges(inputs, permutation(E, 2), [0, 1])),
            "target_relabelling": Symmetry((src, torch.argsort(perm)[index], n), rows(perm)),
        }


class TestScatterSum(ScatterChecks):
    def build(self):
        return ScatterSum()


class TestScatterMean(ScatterChecks):
    def build(self):
        return ScatterMean()


class TestGather(ModelChecks):
    def build(self):
        return Gather()

    def inputs(self) -> tuple:
        x, ei, _, _, _ = graph()
        return x, ei[1]

    def symmetries(self, inputs: tuple):
        return {"node_relabelling": Symmetry(relabel_nodes(inputs, permutation(N, 1), [0], [1]))}


# ---------------------------------------------------------------------- completeness
CASES = {
    "MessagePassing": TestMessagePassingSum,
    "AttentionMessagePassing": TestAttentionMessagePassing,
    "EGNNLayer": TestEGNNLayer,
    "Stage1Block": TestStage1BlockEGNN,
    "AngularMoments": TestAngularMomentsCoreTorch,
    "SolidHarmonics": TestSolidHarmonics,
    "MLP": TestMLP,
    "PairMLP": TestPairMLP,
    "GaussianRBF": TestGaussianRBF,
    "MeanPool": TestMeanPool,
    "SumPool": TestSumPool,
    "AttentionPool": TestAttentionPool,
    "DiffPool": TestDiffPool,
    "TopKPool": TestTopKPool,
    "NucleusCount": TestNucleusCount,
    "LargestNucleus": TestLargestNucleus,
    "InnerProductDecoder": TestInnerProductDecoder,
    "scatter_sum": TestScatterSum,
    "scatter_mean": TestScatterMean,
    "gather": TestGather,
}
NOT_LAYERS = {
    "padded_slots": "integer bookkeeping (no float output, no gradient); through AngularMoments' core-torch path",
    "make_pool": "a factory; every pool it makes has a case",
    "FusedKernels": "the operator interface (no forward); through the fused AngularMoments, attention and LargestNucleus cases",
    "NoFusedKernels": "stands in where the operators are not built and is never called",
}


def test_every_public_layer_has_a_case() -> None:
    names = set(L.__all__)
    missing = names - set(CASES) - set(NOT_LAYERS)
    assert not missing, f"layers without a case in tests/test_model_checks.py: {sorted(missing)}"
    assert not (set(CASES) | set(NOT_LAYERS)) - names, "a case names a layer that is no longer public"
    for name, case in CASES.items():
        built = case().build()
        target = getattr(L, name)
        assert isinstance(built, target) if isinstance(target, type) else True, f"{case.__name__} builds {built}"


@pytest.mark.cuda
def test_the_checks_run_on_the_gpu() -> None:
    """Where torch sees a GPU every case above also runs there (skipped, saying so, without one)."""
    assert any(getattr(d, "values", (d,))[0] == "cuda" for d in DEVICES)
