"""The hierarchical graph autoencoder of latentcv (seed design "gaenn", made smooth and
symmetry-preserving).

Data flow of :class:`HierarchicalEncoder` (one frame, or a batch of frames):

1. **Stage 1, per molecule (atoms).** Atom features = species embeddings; each molecule
   is made whole across the periodic boundaries and its atoms get equivariant vectors
   ``u = x - c`` from the centre c. Layers (EGNN / message passing / attention) on the
   complete intra-molecular graph update the atom features (and, for EGNN, the vectors);
   a pooling (mean, sum, attention, DiffPool) gives the molecule embedding. From the
   vectors, per-molecule *orientation* quantities are built: rank-1 vectors
   ``v_m = sum_k a(h_k) u_k`` and traceless rank-2 tensors
   ``Q_m = sum_k b(h_k) (u_k u_k^T - |u_k|^2 I / 3)`` (rank 2 sees head-tail symmetric
   molecules such as homonuclear dimers, whose rank-1 vectors vanish), normalised
   smoothly to unit size (``v / sqrt(|v|^2 + eps^2)``) so that bond lengths don't set
   their scale.
2. **Concatenation layer.** Molecule graph on the centres: each pair (i, j, n) of the
   neighbour list with ``d_ij = c_j + n @ cell - c_i`` gets weight ``s(|d_ij|)`` (smooth
   switch, 0 at D_t) — "switch" — or that switch times a learned gate — "attention".
   Edge features: radial basis of |d_ij| and the orientation invariants
   ``v_i.v_j``, ``(v_i.d)(v_j.d)``, ``tr(Q_i Q_j)``, ``d.Q_i.d``, ``d.Q_j.d`` (d unit):
   they tell an orientationally ordered crystal from a plastic one. Pairs at or beyond
   D_t (a Verlet skin) are dropped first; per-pair geometry is computed once.
3. **Stage 2 (molecule graph).** Node inputs: molecule embedding, learned Steinhardt
   invariants of the neighbour shell (``AngularMoments``: real spherical harmonics,
   default l = 6), switched coordination, shell-averaged orientation invariants.
   Attention message passing layers (default one) → per-molecule latents.

4. **Heads.** Per-molecule crystal-likeness ``p_m = sigmoid(.)``, ``n_crystal = sum p_m``
   (extensive: sees a small nucleus in a large liquid), ``n_nucleus`` (the crystal-like
   molecules among crystal-like neighbours, ``NucleusCount``: ~0 in a melt at any size,
   blind to scattered crystal-like molecules); global pooling → latent z (dimension
   ``latent_dim``; mean of the posterior when variational).

Cost per MD step (the encoder runs with its gradient every step) is documented in
docs/performance.md: edge MLPs project node features before gathering (``PairMLP``),
and no per-pair tensor wider than a few dozen columns is formed.

Only distances, dot products and species embeddings enter as features: the outputs are
invariant to translations, rotations, reflections, permutations of molecules and of
identical atoms, periodic images and the choice of equivalent cell vectors, and are
continuous with continuous gradients.

:class:`~latentcv.cv_models.autoencoder.HierarchicalAutoencoder` (autoencoder.py) adds the
decoders and the training losses.

The encoder is TorchScript-scriptable and satisfies docs/model-contract.md:
``forward(positions[N,3], cell[3,3], edge_index[2,P], edge_shift[P,3]) -> Tensor[K]``
with outputs ``z0..z{d-1}, n_crystal``, plus ``molecule_centers`` and getters.

The module is a little over 400 lines because the stages are methods of one class: one
scripted module is what the C++ core loads; the stages' layers live in ``layers/``.
"""

from __future__ import annotations

from typing import List, NamedTuple, Tuple

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .graphs import frame_graph, intra_molecular_edges, molecule_centers, molecule_offsets, switch
from .layers import (
    MLP,
    AngularMoments,
    NucleusCount,
    AttentionMessagePassing,
    GaussianRBF,
    LargestNucleus,
    PairMLP,
    SolidHarmonics,
    Stage1Block,
    gather,
    make_pool,
    scatter_sum,
)
from .layers.fused import kernels_for, use_fused

__all__ = ["HierarchicalEncoder", "EncoderOutput"]


class EncoderOutput(NamedTuple):
    """What :meth:`HierarchicalEncoder.encode` returns for B frames of M molecules in all.

    ``z`` [B, d] posterior mean, ``logvar`` [B, d], ``n_crystal`` [B], ``p_logit`` [M]
    per-molecule crystal logits, ``n_nucleus`` [B] (:class:`NucleusCount` of the
    probabilities on the molecule graph), ``mol_latent`` [M, L], ``mol_feat`` [M, F] (stage-2 input
    features, the node-reconstruction target), ``edge_index`` [2, E] (the pairs closer than
    the cutoff; the others are dropped), their switched weights ``edge_weight`` [E], and the
    molecule ``centers`` [M, 3].
    """

    z: Tensor
    logvar: Tensor
    n_crystal: Tensor
    p_logit: Tensor
    n_nucleus: Tensor
    mol_latent: Tensor
    mol_feat: Tensor
    edge_index: Tensor
    edge_weight: Tensor
    centers: Tensor


class HierarchicalEncoder(nn.Module):
    """The deployable encoder: positions + cell + molecule pair list -> CV outputs.

    Args:
        config: :class:`~latentcv.cv_models.config.ModelConfig`; ``atoms_per_molecule``,
            ``species`` and ``n_species`` must be resolved (non-zero) here.

    Attributes (read by ``export/``): ``cutoff`` (D_t), ``r_on``, ``atoms_per_molecule``,
    ``latent_dim``, buffers ``species`` [A], ``crystal_centroid`` / ``melt_centroid``
    [latent_dim] (set after training), ``has_centroids`` [1].

    ``forward`` returns ``[z_0, ..., z_{d-1}, n_crystal]`` (``output_names()``).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        if c.atoms_per_molecule < 1:
            raise ValueError("HierarchicalEncoder: config.atoms_per_molecule must be resolved (>= 1)")
        species = list(c.species) if c.species else [0] * c.atoms_per_molecule
        if len(species) != c.atoms_per_molecule:
            raise ValueError("HierarchicalEncoder: len(config.species) must equal atoms_per_molecule")
        n_species = max(c.n_species, max(species) + 1)
        self.cutoff = float(c.cutoff)
        self.r_on = float(c.r_on)
        self.atoms_per_molecule = int(c.atoms_per_molecule)
        self.latent_dim = int(c.latent_dim)
        self.variational = bool(c.variational)
        self.register_buffer("species", torch.tensor(species, dtype=torch.long))
        self.register_buffer("crystal_centroid", torch.zeros(c.latent_dim))
        self.register_buffer("melt_centroid", torch.zeros(c.latent_dim))
        self.register_buffer("has_centroids", torch.zeros(1))

        pooled1 = self._init_atom_stage(c, n_species)
        self._init_molecule_stage(c, pooled1)
        self._output_names: List[str] = [f"z{k}" for k in range(c.latent_dim)] + ["n_crystal"]
        self.nucleus = NucleusCount(c.nucleus_fraction, c.nucleus_width)  # no parameters
        radius = c.largest_radius or 4.0 * c.cutoff
        # analysis only (cv_models/batching.py), not yet in the exported outputs: its pair sum
        # costs (nucleated molecules)^2: ~12 ms with gradients at 2 000 of them with the fused
        # sphere_mass operator (benchmarks/largest_nucleus_cost.py), 0.9 s in core torch
        self.largest = LargestNucleus(radius, min(c.cutoff, radius), c.largest_sharpness)  # no parameters
        # per-pair geometry by latentcv's fused CPU operator (cv_models/native/ops.py) when built
        self.fused = use_fused()
        self.kernels = kernels_for(self.fused)
        # traceable (export/aoti.py sets it, with fused = False): no data-dependent shapes, so
        # that torch.export traces the encoder with symbolic sizes (pairs beyond the cutoff kept:
        # their switch and its derivative are 0, so the values are the same)
        self.traceable = False
        dtype = torch.float64 if c.dtype == "float64" else torch.float32
        self.to(dtype)

    # The two builders below create the parameters in a fixed order: under one seed the
    # same config gives the same initial model (checkpoints, tests and results rely on it).
    def _init_atom_stage(self, c: ModelConfig, n_species: int) -> int:
        """Stage 1 (species embedding, intra-molecular layers, pooling) and the orientation
        weights; returns the width of the pooled molecule embedding."""
        h = c.hidden
        a = c.atoms_per_molecule
        self.embed = nn.Embedding(n_species, h)
        self.rbf1 = GaussianRBF(c.rbf, c.intra_cutoff)
        n1 = c.stage1_layers if a > 1 else 0
        self.stage1 = nn.ModuleList([Stage1Block(c.stage1_layer, h, c.rbf, c.stage1_aggr, c.heads) for _ in range(n1)])
        self.pool1 = make_pool(c.stage1_pool, h, c.diffpool_clusters)
        pooled1 = int(self.pool1.out_dim)
        self.n_orient = int(c.orientation_channels) if a > 1 else 0
        self.orient_eps = 1e-3 * float(c.intra_cutoff)
        # Optional parts are None when off. They are still drawn, and dropped, so that the
        # random initialisation of every other parameter does not depend on which parts are
        # on (the same seed gives the same model across these settings and versions).
        no = max(self.n_orient, 1)
        orient_v, orient_q = nn.Linear(h, no), nn.Linear(h, no)
        # per-molecule orientation weights (none for one-atom molecules or 0 channels)
        self.orient_v = orient_v if self.n_orient > 0 else None
        self.orient_q = orient_q if self.n_orient > 0 else None
        # l = 2 solid harmonics: a traceless symmetric tensor as 5 components
        self.harm2 = SolidHarmonics([2])
        return pooled1

    def _init_molecule_stage(self, c: ModelConfig, pooled1: int) -> None:
        """Concatenation layer (gate), angular moments, stage 2 and the heads."""
        h = c.hidden
        self.rbf2 = GaussianRBF(c.rbf, c.cutoff)
        edge_dim = c.rbf + 5 * self.n_orient
        self.attention_concat = c.concat == "attention"
        concat_gate = PairMLP(pooled1, edge_dim, h, 1)
        self.concat_gate = concat_gate if self.attention_concat else None
        # learned Steinhardt invariants of the neighbour shell; moment_channels = 0 switches them off
        moments = AngularMoments(
            pooled1,
            c.rbf,
            max(c.moment_channels, 1),
            max(c.max_rank, 1),
            c.moment_step,
            list(c.moment_degrees),
            c.bond_order,
        )
        self.moments = moments if c.moment_channels > 0 else None
        self.n_moments = int(moments.out_dim) if c.moment_channels > 0 else 0
        # node inputs: embedding, angular moments, coordination, orientation invariants
        # averaged over the neighbour shell (they reach every node directly)
        self.mol_feat_dim = pooled1 + self.n_moments + 1 + 5 * self.n_orient
        self.node_in = MLP([self.mol_feat_dim, c.stage2_hidden, c.stage2_hidden])
        self.stage2 = nn.ModuleList(
            [
                AttentionMessagePassing(
                    c.stage2_hidden, edge_dim, c.stage2_hidden, c.heads, c.stage2_edge_values, c.stage2_attention_hidden
                )
                for _ in range(c.stage2_layers)
            ]
        )
        self.to_latent = MLP([c.stage2_hidden, c.stage2_hidden, c.molecule_latent])
        self.crystal_head = MLP([c.molecule_latent, c.stage2_hidden, 1])
        self.pool2 = make_pool(c.global_pool, c.molecule_latent, c.diffpool_clusters)
        self.z_mu = nn.Linear(int(self.pool2.out_dim), c.latent_dim)
        self.z_logvar = nn.Linear(int(self.pool2.out_dim), c.latent_dim)

    # ------------------------------------------------------------------ getters
    @torch.jit.export
    def output_names(self) -> List[str]:
        """Names of the K outputs of ``forward``: ``z0..z{d-1}, n_crystal``."""
        return self._output_names

    @torch.jit.export
    def get_cutoff(self) -> float:
        """D_t: molecule pairs beyond it contribute nothing (value and derivative)."""
        return self.cutoff

    @torch.jit.export
    def get_atoms_per_molecule(self) -> int:
        return self.atoms_per_molecule

    @torch.jit.export
    def get_species(self) -> List[int]:
        s: List[int] = self.species.tolist()
        return s

    # ------------------------------------------------------------------ geometry
    @torch.jit.export
    def molecule_centers(self, positions: Tensor, cell: Tensor) -> Tensor:
        """Molecule centres [M, 3] (first atom + mean minimum-image displacement); the
        neighbour list passed to ``forward`` must be built on these."""
        return molecule_centers(positions, cell, self.atoms_per_molecule)

    # ------------------------------------------------------------------ encoder
    def pair_geometry_reference(
        self, centers: Tensor, cells: Tensor, mol_batch: Tensor, edge_index: Tensor, edge_shift: Tensor, num_graphs: int
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Per-pair geometry of the molecule graph with core torch ops (the fused operator
        ``latentcv::pair_geometry`` computes the same on CPU): the pairs closer than ``cutoff``
        ([2, E]; those beyond, the skin of a Verlet list, have switch and derivative exactly 0
        and are dropped), d_ij = c_j + n @ cell - c_i [E, 3], r [E], switch w [E], radial
        basis [E, R]."""
        i = edge_index[0]
        j = edge_index[1]
        if num_graphs == 1:
            sv = torch.matmul(edge_shift, cells[0])
        else:
            sv = torch.bmm(edge_shift.unsqueeze(1), gather(cells, gather(mol_batch, i))).squeeze(1)
        d = gather(centers, j) + sv - gather(centers, i)
        r2 = (d * d).sum(-1)
        keep = torch.nonzero(r2.detach() < self.cutoff * self.cutoff).view(-1)
        if keep.shape[0] < r2.shape[0]:
            i = gather(i, keep)
            j = gather(j, keep)
            d = gather(d, keep)
            r2 = gather(r2, keep)
            edge_index = torch.stack([i, j])
        r = torch.sqrt(r2 + 1e-30)
        w = switch(r, self.cutoff, self.r_on)
        rbf = self.rbf2(r)
        return edge_index, d, r, w, rbf

    def pair_geometry_all(
        self, centers: Tensor, cells: Tensor, mol_batch: Tensor, edge_index: Tensor, edge_shift: Tensor, num_graphs: int
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """:meth:`pair_geometry_reference` keeping every pair of the list ([2, P], d [P, 3], r [P],
        switch [P], radial basis [P, R]): no data-dependent size, for ``torch.export``. Pairs
        beyond the cutoff have switch 0 and derivative 0, so they change no value or gradient."""
        i = edge_index[0]
        if num_graphs == 1:
            sv = torch.matmul(edge_shift, cells[0])
        else:
            sv = torch.bmm(edge_shift.unsqueeze(1), gather(cells, gather(mol_batch, i))).squeeze(1)
        d = gather(centers, edge_index[1]) + sv - gather(centers, i)
        r = torch.sqrt((d * d).sum(-1) + 1e-30)
        return edge_index, d, r, switch(r, self.cutoff, self.r_on), self.rbf2(r)

    def encode(
        self,
        positions: Tensor,
        cells: Tensor,
        mol_batch: Tensor,
        edge_index: Tensor,
        edge_shift: Tensor,
        num_graphs: int,
    ) -> EncoderOutput:
        """Encode a batch of frames: atoms → molecule graph → molecules → heads.

        Args:
            positions: [N, 3] atoms of all frames, frame after frame.
            cells: [B, 3, 3] one cell per frame (rows a, b, c).
            mol_batch: [M] frame index of every molecule.
            edge_index: [2, P] molecule pairs (global molecule indices), full list.
            edge_shift: [P, 3] image shifts of the pairs in units of the cell of their frame.
            num_graphs: B.
        """
        m = mol_batch.shape[0]
        centers, h, x, atom_mol = self.atom_stage(positions, cells, mol_batch)
        hm = self.pool1(h, atom_mol, m)  # [M, F1]
        edge_index, d, r, w, rbf = self.pair_geometry(centers, cells, mol_batch, edge_index, edge_shift, num_graphs)
        orient = self.orientation_invariants(h, x, atom_mol, m, edge_index, d, r)
        eattr = torch.cat([rbf, orient], dim=-1) if orient.shape[1] > 0 else rbf
        feat = self.molecule_features(hm, edge_index, d, rbf, w, orient)
        lat = self.molecule_stage(hm, feat, edge_index, eattr, w)
        z, logvar, p_logit, n_crystal = self.heads(lat, mol_batch, num_graphs)
        n_nucleus = self.nucleus(torch.sigmoid(p_logit), edge_index, w, mol_batch, num_graphs)
        return EncoderOutput(z, logvar, n_crystal, p_logit, n_nucleus, lat, feat, edge_index, w, centers)

    def atom_stage(self, positions: Tensor, cells: Tensor, mol_batch: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Stage 1 on the complete intra-molecular graph: (centres [M, 3], atom features
        [N, F], atom vectors [N, 3] (updated by EGNN layers), molecule of each atom [N])."""
        a = self.atoms_per_molecule
        m = mol_batch.shape[0]
        centers, x = molecule_offsets(positions, cells, mol_batch, a)
        atom_mol = torch.arange(m, device=positions.device).repeat_interleave(a)
        h = self.embed(self.species.repeat(m))
        if a > 1:
            ie = intra_molecular_edges(m, a, positions.device)
            du = gather(x, ie[1]) - gather(x, ie[0])
            iattr = self.rbf1(torch.sqrt((du * du).sum(-1) + 1e-30))
            iw = torch.ones_like(iattr[:, 0])
            for block in self.stage1:
                h, x = block(h, x, ie, iattr, iw)
        return centers, h, x, atom_mol

    def pair_geometry(
        self, centers: Tensor, cells: Tensor, mol_batch: Tensor, edge_index: Tensor, edge_shift: Tensor, num_graphs: int
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """The molecule graph's per-pair geometry, computed once: pairs at or beyond the cutoff
        (the skin of a Verlet list) dropped first (their switch and its derivative are exactly
        0, so nothing changes but the cost); (pairs [2, E], d [E, 3], r [E], switch [E],
        radial basis [E, R]). latentcv's fused operator on CPU when built, else core torch."""
        if self.traceable:
            return self.pair_geometry_all(centers, cells, mol_batch, edge_index, edge_shift, num_graphs)
        if self.fused and centers.device.type == "cpu":
            return self.kernels.pair_geometry(
                centers,
                cells,
                mol_batch,
                edge_index,
                edge_shift,
                self.cutoff,
                self.r_on,
                self.rbf2.mu.to(centers.dtype),
                self.rbf2.width,
            )
        return self.pair_geometry_reference(centers, cells, mol_batch, edge_index, edge_shift, num_graphs)

    def orientation_invariants(
        self, h: Tensor, x: Tensor, atom_mol: Tensor, m: int, edge_index: Tensor, d: Tensor, r: Tensor
    ) -> Tensor:
        """Per pair, the invariants of the two molecules' orientations [E, 5C]: ``v_i.v_j``,
        ``(v_i.d)(v_j.d)``, ``tr(Q_i Q_j)``, ``d.Q_i.d``, ``d.Q_j.d`` (d unit); [E, 0] when the
        model has no orientation channels. On CPU by latentcv's fused operator when built
        (:meth:`orientation_invariants_reference`: the same with core torch ops)."""
        orient_v = self.orient_v
        orient_q = self.orient_q
        if orient_v is not None:
            if orient_q is not None:
                # per molecule: C vectors (l = 1) and C traceless rank-2 tensors (l = 2, five
                # components), as solid harmonics of the atom vectors (smooth at u = 0)
                v = scatter_sum(orient_v(h).unsqueeze(-1) * x.unsqueeze(1), atom_mol, m)  # [M,C,3]
                q = scatter_sum(orient_q(h).unsqueeze(-1) * self.harm2(x).unsqueeze(1), atom_mol, m)  # [M,C,5]
                # scale-free orientations: v/sqrt(|v|^2+eps^2), Q/sqrt(|Q|^2+eps^4) (smooth, 0 stays 0)
                eps2 = self.orient_eps * self.orient_eps
                v = v / torch.sqrt((v * v).sum(-1, keepdim=True) + eps2)
                q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + eps2 * eps2)
                dh = d / r.unsqueeze(-1)
                y2 = self.harm2(dh)  # [E,5]
                if self.fused and d.device.type == "cpu":
                    return self.kernels.orientation_invariants(torch.cat([v, q], dim=-1), edge_index, dh, y2)
                return self.orientation_invariants_reference(v, q, edge_index, dh, y2)
        return torch.zeros(d.shape[0], 0, dtype=d.dtype, device=d.device)

    def orientation_invariants_reference(
        self, v: Tensor, q: Tensor, edge_index: Tensor, dh: Tensor, y2: Tensor
    ) -> Tensor:
        """The pair invariants [E, 5C] with core torch ops, from the unit orientations v
        [M, C, 3] and q [M, C, 5], the unit pair directions dh [E, 3] and their l = 2
        harmonics y2 [E, 5] (``latentcv::orientation_invariants`` computes the same on CPU)."""
        m, c_n = v.shape[0], v.shape[1]
        # four narrow gathers rather than slices of two wide ones: the backward of a
        # slice writes a zero-filled copy of the whole [E, C, 8] gather per slice
        v = v.reshape(m, c_n * 3)
        q = q.reshape(m, c_n * 5)
        vi = gather(v, edge_index[0]).view(-1, c_n, 3)
        vj = gather(v, edge_index[1]).view(-1, c_n, 3)
        qi = gather(q, edge_index[0]).view(-1, c_n, 5)
        qj = gather(q, edge_index[1]).view(-1, c_n, 5)
        y1 = dh.unsqueeze(1)  # [E,1,3]: the l = 1 harmonics are the components
        y2 = y2.unsqueeze(1)  # [E,1,5]
        vv = (vi * vj).sum(-1)
        vd = (vi * y1).sum(-1) * (vj * y1).sum(-1)
        qq = (qi * qj).sum(-1)
        dqi = (qi * y2).sum(-1)
        dqj = (qj * y2).sum(-1)
        return torch.cat([vv, vd, qq, dqi, dqj], dim=-1)

    def molecule_features(
        self, hm: Tensor, edge_index: Tensor, d: Tensor, rbf: Tensor, w: Tensor, orient: Tensor
    ) -> Tensor:
        """Stage-2 node inputs [M, F]: molecule embedding, angular moments of the neighbour
        shell, switched coordination / 12, orientation invariants averaged over the shell."""
        m = hm.shape[0]
        coord = scatter_sum(w, edge_index[0], m).unsqueeze(-1)
        parts: List[Tensor] = [hm]
        moments = self.moments
        if moments is not None:
            parts.append(moments(hm, edge_index, d, rbf, w))
        parts.append(coord / 12.0)
        if orient.shape[1] > 0:
            parts.append(scatter_sum(orient * w.unsqueeze(-1), edge_index[0], m) / (1.0 + coord))
        return torch.cat(parts, dim=-1)

    def molecule_stage(self, hm: Tensor, feat: Tensor, edge_index: Tensor, eattr: Tensor, w: Tensor) -> Tensor:
        """Stage 2 on the molecule graph (edge weights: the switch, times a learned gate for
        ``concat = "attention"``) → per-molecule latents [M, L]."""
        gate_mlp = self.concat_gate
        w2 = w
        if gate_mlp is not None:
            w2 = w * torch.sigmoid(gate_mlp(hm, edge_index[0], edge_index[1], eattr)[:, 0])
        y = self.node_in(feat)
        for layer in self.stage2:
            y = layer(y, edge_index, eattr, w2)
        return self.to_latent(y)

    def heads(self, lat: Tensor, mol_batch: Tensor, num_graphs: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """(z [B, d], logvar [B, d], p_logit [M], n_crystal = sum_m sigmoid(p_logit) [B])."""
        p_logit = self.crystal_head(lat)[:, 0]
        n_crystal = scatter_sum(torch.sigmoid(p_logit), mol_batch, num_graphs)
        pooled = self.pool2(lat, mol_batch, num_graphs)
        return self.z_mu(pooled), self.z_logvar(pooled), p_logit, n_crystal

    def forward(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        """CV outputs [K] = ``[z_0..z_{d-1}, n_crystal]`` of one frame (contract v1).

        Args:
            positions: [N, 3] atoms, N = M * atoms_per_molecule, molecules contiguous.
            cell: [3, 3] rows a, b, c.
            edge_index: [2, P] int64 full list of molecule pairs within ``cutoff``.
            edge_shift: [P, 3] image shifts (``d_ij = c_j + n @ cell - c_i``).
        """
        m = positions.shape[0] // self.atoms_per_molecule
        batch = torch.zeros(m, dtype=torch.long, device=positions.device)
        out = self.encode(positions, cell.unsqueeze(0), batch, edge_index, edge_shift, 1)
        return torch.cat([out.z[0], out.n_crystal])

    @torch.jit.export
    def molecule_crystallinity(self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor) -> Tensor:
        """Per-molecule crystal-likeness p_m in (0, 1), [M] (analysis, visualisation)."""
        m = positions.shape[0] // self.atoms_per_molecule
        batch = torch.zeros(m, dtype=torch.long, device=positions.device)
        out = self.encode(positions, cell.unsqueeze(0), batch, edge_index, edge_shift, 1)
        return torch.sigmoid(out.p_logit)

    def evaluate(self, positions: Tensor, cell: Tensor) -> Tensor:
        """Convenience (not exported): build the neighbour list here and call ``forward``."""
        ei, sh = frame_graph(positions, cell, self.atoms_per_molecule, self.cutoff)
        return self.forward(positions, cell, ei, sh)

    def set_centroids(self, crystal: Tensor, melt: Tensor) -> None:
        """Store the crystal and melt centroids of the latent space (after training)."""
        self.crystal_centroid.copy_(crystal.to(self.crystal_centroid.dtype))
        self.melt_centroid.copy_(melt.to(self.melt_centroid.dtype))
        self.has_centroids.fill_(1.0)
