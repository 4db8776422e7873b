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

Cost per MD step (the encoder runs with its gradient every step) is documented in
docs/performance.md: edge MLPs project node features before gathering (``PairMLP``),
and no per-pair tensor wider than a few dozen columns is formed.
4. **Heads.** Per-molecule crystal-likeness ``p_m = sigmoid(.)``, ``n_crystal = sum p_m``
   (extensive: sees a small nucleus in a large liquid); global pooling → latent z
   (dimension ``latent_dim``; mean of the posterior when variational).

Only distances, dot products and species embeddings enter as features: the outputs are
invariant to translations, rotations, reflections, permutations of molecules and of
identical atoms, periodic images and the choice of equivalent cell vectors, and are
continuous with continuous gradients.

:class:`HierarchicalAutoencoder` adds the decoders of the seed (inner-product adjacency
``sigma(l_i . l_j)`` on molecule latents, node-feature reconstruction), the optional KL
term and a frame-level separation head, and computes the training loss.

The encoder is TorchScript-scriptable and satisfies docs/model-contract.md:
``forward(positions[N,3], cell[3,3], edge_index[2,P], edge_shift[P,3]) -> Tensor[K]``
with outputs ``z0..z{d-1}, n_crystal``, plus ``molecule_centers`` and getters.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .graphs import frame_graph, intra_molecular_edges, minimum_image, molecule_centers, molecule_offsets, switch
from .ops import ops_available
from .layers import (
    MLP,
    AngularMoments,
    AttentionMessagePassing,
    EGNNLayer,
    FusedKernels,
    GaussianRBF,
    InnerProductDecoder,
    MessagePassing,
    NoFusedKernels,
    PairMLP,
    SolidHarmonics,
    gather,
    make_pool,
    scatter_sum,
)

__all__ = ["HierarchicalEncoder", "HierarchicalAutoencoder", "Stage1Block"]


class _PassThrough(nn.Module):
    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor) -> Tensor:
        return x


class Stage1Block(nn.Module):
    """One stage-1 layer behind a common signature (h, x) -> (h', x').

    ``kind`` = "egnn" updates both; "mp" / "attention" update h and pass x through.
    """

    def __init__(self, kind: str, node_dim: int, edge_dim: int, aggr: str = "sum", heads: int = 2) -> None:
        super().__init__()
        self.kind = kind
        if kind == "egnn":
            self.egnn = EGNNLayer(node_dim, edge_dim, node_dim)
            self.inv = _PassThrough()
        else:
            self.egnn = None
            if kind == "mp":
                self.inv = MessagePassing(node_dim, edge_dim, node_dim, aggr)
            elif kind == "attention":
                self.inv = AttentionMessagePassing(node_dim, edge_dim, node_dim, heads)
            else:
                raise ValueError(f"stage-1 layer {kind!r}: use 'egnn', 'mp' or 'attention'")

    def forward(
        self, h: Tensor, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor
    ) -> Tuple[Tensor, Tensor]:
        egnn = self.egnn
        if egnn is not None:
            return egnn(h, x, edge_index, edge_attr, edge_weight, None)
        return self.inv(h, edge_index, edge_attr, edge_weight), x


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

        h = c.hidden
        a = c.atoms_per_molecule
        # ---- stage 1
        self.embed = nn.Embedding(n_species, h)
        self.rbf1 = GaussianRBF(c.rbf, c.intra_cutoff)
        n1 = c.stage1_layers if a > 1 else 0
        self.stage1 = nn.ModuleList(
            [Stage1Block(c.stage1_layer, h, c.rbf, c.stage1_aggr, c.heads) for _ in range(n1)]
        )
        self.pool1 = make_pool(c.stage1_pool, h, c.diffpool_clusters)
        pooled1 = int(self.pool1.out_dim)
        self.n_orient = int(c.orientation_channels) if a > 1 else 0
        self.orient_eps = 1e-3 * float(c.intra_cutoff)
        no = max(self.n_orient, 1)
        self.orient_v = nn.Linear(h, no)
        self.orient_q = nn.Linear(h, no)
        # l = 2 solid harmonics: a traceless symmetric tensor as 5 components
        self.harm2 = SolidHarmonics([2])
        # ---- concatenation layer + stage 2
        self.rbf2 = GaussianRBF(c.rbf, c.cutoff)
        edge_dim = c.rbf + 5 * self.n_orient
        self.attention_concat = c.concat == "attention"
        self.concat_gate = PairMLP(pooled1, edge_dim, h, 1)
        self.moments = AngularMoments(pooled1, c.rbf, max(c.moment_channels, 1), max(c.max_rank, 1), c.moment_step,
                                      list(c.moment_degrees), c.bond_order)
        self.n_moments = int(self.moments.out_dim) if c.moment_channels > 0 and c.max_rank > 0 else 0
        # node inputs: embedding, angular moments, coordination, orientation invariants
        # averaged over the neighbour shell (they reach every node directly)
        self.mol_feat_dim = pooled1 + self.n_moments + 1 + 5 * self.n_orient
        self.node_in = MLP([self.mol_feat_dim, c.stage2_hidden, c.stage2_hidden])
        self.stage2 = nn.ModuleList(
            [AttentionMessagePassing(c.stage2_hidden, edge_dim, c.stage2_hidden, c.heads, c.stage2_edge_values,
                                     c.stage2_attention_hidden)
             for _ in range(c.stage2_layers)]
        )
        self.to_latent = MLP([c.stage2_hidden, c.stage2_hidden, c.molecule_latent])
        self.crystal_head = MLP([c.molecule_latent, c.stage2_hidden, 1])
        self.pool2 = make_pool(c.global_pool, c.molecule_latent, c.diffpool_clusters)
        self.z_mu = nn.Linear(int(self.pool2.out_dim), c.latent_dim)
        self.z_logvar = nn.Linear(int(self.pool2.out_dim), c.latent_dim)
        self._output_names: List[str] = [f"z{k}" for k in range(c.latent_dim)] + ["n_crystal"]
        # per-pair geometry by latentcv's fused CPU operator (cv_models/ops.py) when built
        self.fused = ops_available()
        self.kernels = FusedKernels() if self.fused else NoFusedKernels()
        dtype = torch.float64 if c.dtype == "float64" else torch.float32
        self.to(dtype)

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
    def pair_geometry_reference(self, centers: Tensor, cells: Tensor, mol_batch: Tensor, edge_index: Tensor,
                                edge_shift: Tensor, num_graphs: int) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
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

    def encode(
        self,
        positions: Tensor,
        cells: Tensor,
        mol_batch: Tensor,
        edge_index: Tensor,
        edge_shift: Tensor,
        num_graphs: int,
    ) -> Dict[str, Tensor]:
        """Encode a batch of frames.

        Args:
            positions: [N, 3] atoms of all frames, frame after frame.
            cells: [B, 3, 3] one cell per frame (rows a, b, c).
            mol_batch: [M] frame index of every molecule.
            edge_index: [2, P] molecule pairs (global molecule indices), full list.
            edge_shift: [P, 3] image shifts of the pairs in units of the cell of their frame.
            num_graphs: B.
        Returns dict with: ``z`` [B, d] (posterior mean), ``logvar`` [B, d],
            ``n_crystal`` [B], ``p_logit`` [M], ``mol_latent`` [M, L], ``mol_feat`` [M, F]
            (input features of stage 2, the node-reconstruction target), ``edge_index``
            [2, P'] (the pairs closer than ``cutoff``: the others are dropped), their
            ``edge_weight`` [P'], ``centers`` [M, 3].
        """
        a = self.atoms_per_molecule
        m = mol_batch.shape[0]
        dev = positions.device
        centers, u = molecule_offsets(positions, cells, mol_batch, a)
        atom_mol = torch.arange(m, device=dev).repeat_interleave(a)
        h = self.embed(self.species.repeat(m))
        # ---- stage 1 on the complete intra-molecular graph
        if a > 1:
            ie = intra_molecular_edges(m, a, dev)
            x = u
            du = gather(x, ie[1]) - gather(x, ie[0])
            ir = torch.sqrt((du * du).sum(-1) + 1e-30)
            iattr = self.rbf1(ir)
            iw = torch.ones_like(ir)
            for block in self.stage1:
                h, x = block(h, x, ie, iattr, iw)
        else:
            x = u
        hm = self.pool1(h, atom_mol, m)  # [M, F1]
        # ---- concatenation layer: switched molecule graph. Per-edge geometry is computed
        # once; pairs at or beyond the cutoff (the skin of a Verlet list) are dropped first:
        # their switch and its derivative are exactly 0, so nothing changes but the cost.
        if self.fused and positions.device.type == "cpu":
            edge_index, d, r, w, rbf = self.kernels.pair_geometry(
                centers, cells, mol_batch, edge_index, edge_shift, self.cutoff, self.r_on,
                self.rbf2.mu.to(positions.dtype), self.rbf2.width)
        else:
            edge_index, d, r, w, rbf = self.pair_geometry_reference(centers, cells, mol_batch, edge_index, edge_shift,
                                                                    num_graphs)
        i = edge_index[0]
        j = edge_index[1]
        if self.n_orient > 0:
            # per molecule: C vectors (l = 1) and C traceless rank-2 tensors (l = 2, five
            # components), as solid harmonics of the atom vectors (smooth at u = 0)
            c_n = self.n_orient
            v = scatter_sum(self.orient_v(h).unsqueeze(-1) * x.unsqueeze(1), atom_mol, m)  # [M,C,3]
            q = scatter_sum(self.orient_q(h).unsqueeze(-1) * self.harm2(x).unsqueeze(1), atom_mol, m)  # [M,C,5]
            # scale-free orientations: v/sqrt(|v|^2+eps^2), Q/sqrt(|Q|^2+eps^4) (smooth, 0 stays 0)
            eps2 = self.orient_eps * self.orient_eps
            v = v / torch.sqrt((v * v).sum(-1, keepdim=True) + eps2)
            q = q / torch.sqrt((q * q).sum(-1, keepdim=True) + eps2 * eps2)
            vq = torch.cat([v, q], dim=-1).reshape(m, c_n * 8)
            vqi = gather(vq, i).view(-1, c_n, 8)
            vqj = gather(vq, j).view(-1, c_n, 8)
            dh = d / r.unsqueeze(-1)
            y1 = dh.unsqueeze(1)  # [E,1,3]: the l = 1 harmonics are the components
            y2 = self.harm2(dh).unsqueeze(1)  # [E,1,5]
            vi = vqi[:, :, :3]
            vj = vqj[:, :, :3]
            qi = vqi[:, :, 3:]
            qj = vqj[:, :, 3:]
            vv = (vi * vj).sum(-1)
            vd = (vi * y1).sum(-1) * (vj * y1).sum(-1)
            qq = (qi * qj).sum(-1)
            dqi = (qi * y2).sum(-1)
            dqj = (qj * y2).sum(-1)
            eattr = torch.cat([rbf, vv, vd, qq, dqi, dqj], dim=-1)
        else:
            eattr = rbf
        if self.attention_concat:
            gate = torch.sigmoid(self.concat_gate(hm, i, j, eattr)[:, 0])
            w2 = w * gate
        else:
            w2 = w
        # ---- stage 2 on the molecule graph
        coord = scatter_sum(w, i, m).unsqueeze(-1)
        parts: List[Tensor] = [hm]
        if self.n_moments > 0:
            parts.append(self.moments(hm, edge_index, d, rbf, w))
        parts.append(coord / 12.0)
        if self.n_orient > 0:
            parts.append(scatter_sum(eattr[:, rbf.shape[1]:] * w.unsqueeze(-1), i, m) / (1.0 + coord))
        feat = torch.cat(parts, dim=-1)
        y = self.node_in(feat)
        for layer in self.stage2:
            y = layer(y, edge_index, eattr, w2)
        lat = self.to_latent(y)
        p_logit = self.crystal_head(lat)[:, 0]
        n_crystal = scatter_sum(torch.sigmoid(p_logit), mol_batch, num_graphs)
        pooled = self.pool2(lat, mol_batch, num_graphs)
        z = self.z_mu(pooled)
        logvar = self.z_logvar(pooled)
        return {
            "z": z,
            "logvar": logvar,
            "n_crystal": n_crystal,
            "p_logit": p_logit,
            "mol_latent": lat,
            "mol_feat": feat,
            "edge_weight": w,
            "edge_index": edge_index,
            "centers": centers,
        }

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
        return torch.cat([out["z"][0], out["n_crystal"]])

    @torch.jit.export
    def molecule_crystallinity(
        self, positions: Tensor, cell: Tensor, edge_index: Tensor, edge_shift: Tensor
    ) -> Tensor:
        """Per-molecule crystal-likeness p_m in (0, 1), [M] (analysis, visualisation)."""
        m = positions.shape[0] // self.atoms_per_molecule
        batch = torch.zeros(m, dtype=torch.long, device=positions.device)
        out = self.encode(positions, cell.unsqueeze(0), batch, edge_index, edge_shift, 1)
        return torch.sigmoid(out["p_logit"])

    def evaluate(self, positions: Tensor, cell: Tensor) -> Tensor:
        """Convenience (not exported): build the neighbour list here and call ``forward``."""
        ei, sh = frame_graph(positions, cell, self.atoms_per_molecule, self.cutoff)
        return self.forward(positions, cell, ei, sh)

    def set_centroids(self, crystal: Tensor, melt: Tensor) -> None:
        """Store the crystal and melt centroids of the latent space (after training)."""
        self.crystal_centroid.copy_(crystal.to(self.crystal_centroid.dtype))
        self.melt_centroid.copy_(melt.to(self.melt_centroid.dtype))
        self.has_centroids.fill_(1.0)


class HierarchicalAutoencoder(nn.Module):
    """Encoder + the seed's decoders + losses (training only; export the ``encoder``).

    Decoders: inner-product adjacency ``sigma(l_i . l_j)`` over molecule latents (target:
    the switched adjacency ``s(r_ij)``, on graph edges and random negative pairs) and an
    MLP reconstructing each molecule's stage-2 input features from its latent. Optional
    KL of the global latent (``variational``). Supervised terms from phase labels: the
    per-molecule crystal head (BCE against ``batch['mol_labels']``: per-molecule labels, or
    the frame label of every molecule) and a
    linear separation head on z (BCE).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.encoder = HierarchicalEncoder(config)
        enc = self.encoder
        self.adjacency = InnerProductDecoder()
        self.feature_decoder = MLP([config.molecule_latent, config.stage2_hidden, enc.mol_feat_dim])
        self.separation = nn.Linear(config.latent_dim, 1)
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.to(dtype)

    def loss(
        self,
        batch: Dict[str, Tensor],
        weights: Dict[str, float],
        negatives: int,
        generator: Optional[torch.Generator] = None,
    ) -> Tuple[Tensor, Dict[str, float], Dict[str, Tensor]]:
        """Total loss, its parts (floats) and the encoder outputs of a collated batch."""
        terms, _, out = self.loss_terms(batch, negatives, generator)
        parts_t = dict(terms)
        adj_neg = parts_t.pop("adj_neg", None)
        if adj_neg is not None:
            parts_t["adj"] = 0.5 * (parts_t["adj"] + adj_neg)
        total = sum(weights[k] * v for k, v in parts_t.items())
        parts = {k: float(v.detach()) for k, v in parts_t.items()}
        parts["total"] = float(total.detach())
        return total, parts, out

    def loss_terms(
        self,
        batch: Dict[str, Tensor],
        negatives: int,
        generator: Optional[torch.Generator] = None,
        shard: Optional[Tuple[int, int, int, int]] = None,
    ) -> Tuple[Dict[str, Tensor], Dict[str, int], Dict[str, Tensor]]:
        """Each loss term as a mean over its own elements, how many elements each mean is
        over, and the encoder outputs: ``adj`` (graph edges), ``adj_neg`` (sampled
        non-edges; with ``negatives``), ``feat``, ``kl``, ``separation``, ``molecule``.

        ``shard = (molecule offset, molecules, frame offset, frames)`` of the whole batch
        when this batch is one process's share of it (data-parallel training): the random
        draws are then those the whole batch would get, so that the shares' terms
        recombine into the whole batch's exactly (cv_models/distributed.py)."""
        enc = self.encoder
        b = int(batch["cells"].shape[0])
        out = enc.encode(batch["positions"], batch["cells"], batch["mol_batch"], batch["edge_index"],
                         batch["edge_shift"], b)
        lat = out["mol_latent"]
        ei = out["edge_index"]  # the pairs within the cutoff
        dev = lat.device
        bce = nn.functional.binary_cross_entropy_with_logits
        terms: Dict[str, Tensor] = {}
        counts: Dict[str, int] = {}
        # adjacency reconstruction: positives = graph edges (soft target s_ij)
        pos_logit = self.adjacency(lat, ei)
        terms["adj"] = bce(pos_logit, out["edge_weight"].detach())
        counts["adj"] = int(pos_logit.numel())
        if negatives > 0:
            mb = batch["mol_batch"]
            start = batch["mol_start"]
            count = batch["mol_count"]
            m = mb.shape[0]
            src = torch.arange(m, device=dev).repeat(negatives)
            if shard is None:
                rnd = torch.rand(src.shape[0], generator=generator, dtype=torch.float64)
            else:  # this share's molecules' draws among the whole batch's
                full = torch.rand(negatives * shard[1], generator=generator, dtype=torch.float64)
                rnd = full.view(negatives, shard[1])[:, shard[0]:shard[0] + m].reshape(-1)
            rnd = rnd.to(dev)
            dst = start[mb[src]] + (rnd * count[mb[src]].to(torch.float64)).long()
            dst = torch.minimum(dst, start[mb[src]] + count[mb[src]] - 1)
            keep = dst != src
            src = src[keep]
            dst = dst[keep]
            c = out["centers"].detach()
            dvec = minimum_image(c[dst] - c[src], batch["cells"][mb[src]])
            tgt = switch(dvec.norm(dim=-1), enc.cutoff, enc.r_on)
            neg_logit = self.adjacency(lat, torch.stack([src, dst]))
            terms["adj_neg"] = bce(neg_logit, tgt)
            counts["adj_neg"] = int(neg_logit.numel())
        # node-feature reconstruction
        tgt_feat = out["mol_feat"].detach()
        recon = self.feature_decoder(lat)
        terms["feat"] = ((recon - tgt_feat) ** 2).mean()
        counts["feat"] = int(recon.numel())
        z = out["z"]
        if enc.variational:
            lv = out["logvar"]
            terms["kl"] = -0.5 * torch.mean(1 + lv - z * z - torch.exp(lv))
            if shard is None:
                eps = torch.randn(z.shape, generator=generator, dtype=torch.float64)
            else:
                eps = torch.randn((shard[3], z.shape[1]), generator=generator, dtype=torch.float64)[shard[2]:shard[2] + b]
            eps = eps.to(dev, z.dtype)
            z_s = z + eps * torch.exp(0.5 * lv) if self.training else z
        else:
            terms["kl"] = torch.zeros((), dtype=z.dtype, device=dev)
            z_s = z
        counts["kl"] = int(z.numel())
        labels = batch["labels"]  # [B], -1 unlabeled
        known = labels >= 0
        counts["separation"] = int(known.sum())
        if counts["separation"] > 0:
            y = labels[known].to(z.dtype)
            terms["separation"] = bce(self.separation(z_s)[known, 0], y)
        else:
            terms["separation"] = torch.zeros((), dtype=z.dtype, device=dev)
        mol_lab = batch["mol_labels"] if "mol_labels" in batch else labels[batch["mol_batch"]]
        mk = mol_lab >= 0
        counts["molecule"] = int(mk.sum())
        if counts["molecule"] > 0:
            terms["molecule"] = bce(out["p_logit"][mk], mol_lab[mk].to(z.dtype))
        else:
            terms["molecule"] = torch.zeros((), dtype=z.dtype, device=dev)
        return terms, counts, out
