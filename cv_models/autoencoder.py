"""The training side of the hierarchical graph autoencoder: the encoder of
:mod:`latentcv.cv_models.model` plus the seed's decoders and the losses.

:class:`HierarchicalAutoencoder` adds the decoders of the seed (inner-product adjacency
``sigma(l_i . l_j)`` on molecule latents, node-feature reconstruction), the optional KL
term and a frame-level separation head, and computes the training loss. Only its
``encoder`` is exported.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from .config import ModelConfig
from .graphs import minimum_image, switch
from .layers import MLP, InnerProductDecoder
from .loss_terms import merge_parts
from .model import EncoderOutput, HierarchicalEncoder

__all__ = ["HierarchicalAutoencoder"]


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
    ) -> Tuple[Tensor, Dict[str, float], EncoderOutput]:
        """Total loss, its parts (floats) and the encoder outputs of a collated batch."""
        terms, _, out = self.loss_terms(batch, negatives, generator)
        parts_t = merge_parts(dict(terms))
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
    ) -> Tuple[Dict[str, Tensor], Dict[str, int], EncoderOutput]:
        """Each loss term as a mean over its own elements, how many elements each mean is
        over, and the encoder outputs: one entry per row of
        :data:`~latentcv.cv_models.loss_terms.LOSS_TERMS` (``adj_neg`` only with ``negatives``).

        ``shard = (molecule offset, molecules, frame offset, frames)`` of the whole batch
        when this batch is one process's share of it (data-parallel training): the random
        draws are then those the whole batch would get, so that the shares' terms
        recombine into the whole batch's exactly (cv_models/distributed.py)."""
        enc = self.encoder
        b = int(batch["cells"].shape[0])
        out = enc.encode(
            batch["positions"], batch["cells"], batch["mol_batch"], batch["edge_index"], batch["edge_shift"], b
        )
        lat = out.mol_latent
        ei = out.edge_index  # the pairs within the cutoff
        dev = lat.device
        bce = nn.functional.binary_cross_entropy_with_logits
        terms: Dict[str, Tensor] = {}
        counts: Dict[str, int] = {}
        # adjacency reconstruction: positives = graph edges (soft target s_ij)
        pos_logit = self.adjacency(lat, ei)
        terms["adj"] = bce(pos_logit, out.edge_weight.detach())
        counts["adj"] = int(pos_logit.numel())
        if negatives > 0:
            terms["adj_neg"], counts["adj_neg"] = self._negative_pairs_term(batch, out, negatives, generator, shard)
        # node-feature reconstruction
        tgt_feat = out.mol_feat.detach()
        recon = self.feature_decoder(lat)
        terms["feat"] = ((recon - tgt_feat) ** 2).mean()
        counts["feat"] = int(recon.numel())
        z = out.z
        terms["kl"], z_s = self._kl_and_sample(out, b, generator, shard)
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
            terms["molecule"] = bce(out.p_logit[mk], mol_lab[mk].to(z.dtype))
        else:
            terms["molecule"] = torch.zeros((), dtype=z.dtype, device=dev)
        return terms, counts, out

    def _negative_pairs_term(
        self,
        batch: Dict[str, Tensor],
        out: EncoderOutput,
        negatives: int,
        generator: Optional[torch.Generator],
        shard: Optional[Tuple[int, int, int, int]],
    ) -> Tuple[Tensor, int]:
        """Adjacency loss on ``negatives`` random molecule pairs per molecule within its own
        frame (target: their switch value, mostly 0) and how many pairs it is over."""
        enc = self.encoder
        lat = out.mol_latent
        dev = lat.device
        mb = batch["mol_batch"]
        start = batch["mol_start"]
        count = batch["mol_count"]
        m = mb.shape[0]
        src = torch.arange(m, device=dev).repeat(negatives)
        if shard is None:
            rnd = torch.rand(src.shape[0], generator=generator, dtype=torch.float64)
        else:  # this share's molecules' draws among the whole batch's
            full = torch.rand(negatives * shard[1], generator=generator, dtype=torch.float64)
            rnd = full.view(negatives, shard[1])[:, shard[0] : shard[0] + m].reshape(-1)
        rnd = rnd.to(dev)
        dst = start[mb[src]] + (rnd * count[mb[src]].to(torch.float64)).long()
        dst = torch.minimum(dst, start[mb[src]] + count[mb[src]] - 1)
        keep = dst != src
        src = src[keep]
        dst = dst[keep]
        c = out.centers.detach()
        dvec = minimum_image(c[dst] - c[src], batch["cells"][mb[src]])
        tgt = switch(dvec.norm(dim=-1), enc.cutoff, enc.r_on)
        neg_logit = self.adjacency(lat, torch.stack([src, dst]))
        return nn.functional.binary_cross_entropy_with_logits(neg_logit, tgt), int(neg_logit.numel())

    def _kl_and_sample(
        self,
        out: EncoderOutput,
        b: int,
        generator: Optional[torch.Generator],
        shard: Optional[Tuple[int, int, int, int]],
    ) -> Tuple[Tensor, Tensor]:
        """KL term of a variational encoder (0 otherwise) and the latent the separation
        head sees: a posterior sample in training, the mean in evaluation."""
        z = out.z
        if not self.encoder.variational:
            return torch.zeros((), dtype=z.dtype, device=z.device), z
        lv = out.logvar
        kl = -0.5 * torch.mean(1 + lv - z * z - torch.exp(lv))
        if shard is None:
            eps = torch.randn(z.shape, generator=generator, dtype=torch.float64)
        else:
            eps = torch.randn((shard[3], z.shape[1]), generator=generator, dtype=torch.float64)[shard[2] : shard[2] + b]
        eps = eps.to(z.device, z.dtype)
        return kl, (z + eps * torch.exp(0.5 * lv) if self.training else z)
