"""The autoencoder's loss terms in one table, and what derives from it.

:meth:`HierarchicalAutoencoder.loss_terms <latentcv.cv_models.autoencoder.HierarchicalAutoencoder.loss_terms>`
computes one mean per row of :data:`LOSS_TERMS`; the weights (``w_<term>`` of
``[training]``, :func:`loss_weights`), the reported parts (``train_<term>`` /
``val_<term>`` in metrics.csv, :func:`merge_parts`) and the data-parallel recombination
(:func:`term_factors`, :mod:`latentcv.cv_models.distributed`) all follow from it.
A new term: a row here, its mean and count in ``loss_terms``, its ``w_<term>`` field in
``TrainingConfig`` (cv_models/config.py; tests/test_training.py checks all three agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Set, TypeVar

__all__ = [
    "LossTerm",
    "LOSS_TERMS",
    "TERM_NAMES",
    "REPORTED_TERMS",
    "WEIGHT_FIELDS",
    "loss_weights",
    "merge_parts",
    "term_factors",
]


@dataclass(frozen=True)
class LossTerm:
    """One term of the training loss.

    Attributes:
        name: its key in ``loss_terms`` (and, unless ``part_of``, in the reported parts).
        weight: the ``TrainingConfig`` field that weights it.
        over: what its mean is over.
        part_of: the reported term it is averaged into ("" none): ``adj_neg`` enters as
            the mean of ``adj`` and ``adj_neg`` (when there are negative pairs).
        variational_only: weighted 0 unless ``[model] variational = true``.
    """

    name: str
    weight: str
    over: str
    part_of: str = ""
    variational_only: bool = False


LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm("adj", "w_adj", "molecule-graph edges (adjacency reconstruction)"),
    LossTerm("adj_neg", "w_adj", "sampled non-edge pairs ([training] negatives)", part_of="adj"),
    LossTerm("feat", "w_feat", "molecule feature entries (node-feature reconstruction)"),
    LossTerm("kl", "w_kl", "latent entries (KL term)", variational_only=True),
    LossTerm("separation", "w_separation", "labelled frames (frame-level separation head)"),
    LossTerm("molecule", "w_molecule", "labelled molecules (per-molecule crystal head)"),
)
TERM_NAMES: tuple[str, ...] = tuple(t.name for t in LOSS_TERMS)
REPORTED_TERMS: tuple[str, ...] = tuple(t.name for t in LOSS_TERMS if not t.part_of)
WEIGHT_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(t.weight for t in LOSS_TERMS))

V = TypeVar("V")


def loss_weights(training, variational: bool) -> Dict[str, float]:
    """Weight of each reported term from a ``TrainingConfig`` (0 for a variational-only
    term of a non-variational model)."""
    return {
        t.name: getattr(training, t.weight) if variational or not t.variational_only else 0.0
        for t in LOSS_TERMS
        if not t.part_of
    }


def merge_parts(parts: Dict[str, V]) -> Dict[str, V]:
    """The reported parts: each ``part_of`` term present averaged into its term (the mean
    of both), in place; returns ``parts``. Works on tensors and floats alike."""
    for t in LOSS_TERMS:
        if t.part_of and t.name in parts:
            value = parts.pop(t.name)
            parts[t.part_of] = 0.5 * (parts[t.part_of] + value)
    return parts


def term_factors(weights: Dict[str, float], present: Set[str]) -> Dict[str, float]:
    """The factor each ``loss_terms`` mean enters the total with, as :func:`merge_parts`
    combines them: its reported term's weight, halved for both terms of an average when
    the ``part_of`` term is ``present``."""
    halved = {t.part_of for t in LOSS_TERMS if t.part_of and t.name in present}
    factors = {}
    for t in LOSS_TERMS:
        reported = t.part_of or t.name
        factors[t.name] = weights[reported] * (0.5 if reported in halved else 1.0)
    return factors
