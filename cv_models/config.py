"""Configuration of a latentcv training run: dataclasses, loaded from TOML or JSON.

A config file has three tables, ``[data]``, ``[model]`` and ``[training]``; every key is
optional and defaults to the dataclass field. Unknown keys (at any depth: trajectory
tables and ``synthetic`` options too), ill-typed, non-finite or out-of-range values raise
:class:`ConfigError` naming the key (``data.trajectories[1].units``) and what is allowed. docs/config.md lists
every key; its tables are generated from the docstrings below (``python -m
latentcv.cv_models.config_reference --markdown docs/config.md``). The module is longer
than most (~500 lines) because those docstrings are the reference of every key; the
generator lives in :mod:`latentcv.cv_models.config_reference`. Example (TOML)::

    [data]
    trajectories = [
      { path = "crystal.dump", label = "crystal", data_file = "crystal.data" },
      { path = "melt.dump",    label = "melt",    data_file = "melt.data" },
    ]
    n_blocks = 5
    val_fraction = 0.2

    [model]
    cutoff = 1.5        # D_t, in the length unit of the data
    r_on = 1.2          # the switch starts to fall here
    latent_dim = 2

    [training]
    epochs = 50
    output_dir = "runs/lj"
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, get_type_hints

from .data.readers import check_trajectory_table
from .loss_terms import WEIGHT_FIELDS

__all__ = [
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "TrainingConfig",
    "Config",
    "load_config",
    "parse_overrides",
    "merge_overrides",
]


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


@dataclass
class DataConfig:
    """Where frames come from and how they are split.

    Attributes:
        trajectories: one table per trajectory, passed to
            ``latentcv.cv_models.data.readers.read_dataset``: ``path``, ``label`` =
            "crystal" / "melt" / "unlabeled" (any case) or 1 / 0 / -1, ``trajectory``
            (name), ``stride``; LAMMPS dumps also ``data_file``, ``atoms_per_molecule``,
            ``units``, ``start``, ``stop``; other formats (mdtraj) ``top``, ``molecules``,
            ``length_unit``, ``species_map``. Other keys are errors, and so is a
            trajectory that gives no frames. Relative paths are relative to the config file.
        dataset: alternatively a saved ``Dataset`` (``.npz``), relative to the config file.
        synthetic: alternatively a synthetic set (tests, demos), the keyword arguments of
            ``latentcv.cv_models.synthetic.synthetic_dataset`` (e.g. ``{atoms_per_molecule = 2}``).
        n_blocks: contiguous blocks per trajectory for the train/validation split.
        val_fraction: fraction of each trajectory's blocks held out for validation.
        gap: frames dropped on the training side next to each validation block.
        molecule_labels: targets of the per-molecule crystal head: "frame" (every
            molecule takes its frame's phase label; unlabeled frames train no molecule),
            "ten_wolde" (each molecule labelled solid/liquid by the ten Wolde solid-bond
            criterion on molecule centres, in every frame: what lets interface and
            spontaneous-freezing frames teach the head to count crystalline molecules),
            "local_p2" (crystalline when the mean P2 of its axis with its neighbours' axes
            exceeds ``p2_threshold``: for orientationally ordered molecular crystals of
            linear molecules, where ten Wolde on centres fails), or "chill_plus" (crystalline
            when CHILL+ calls the molecule cubic or hexagonal ice: water and other
            tetrahedral liquids; needs ``label_neighbours = 0`` and ``label_cutoff``, 3.5 Å
            for water). Labels stored in the frames themselves take precedence.
        label_cutoff: neighbour cutoff (molecule centres) of that criterion, about the
            first minimum of the centre-centre g(r) of the crystal (0 = the model's
            ``cutoff``; "chill_plus" needs it set).
        p2_threshold: the local P2 above which a molecule is crystalline ("local_p2").
        label_neighbours: each molecule is judged over this many nearest centres (12:
            the first shell of fcc/hcp packings, and for the trimers 6 in-layer + 6
            beyond); 0: over every centre within ``label_cutoff`` (the labels before
            this key). Over a cutoff a trimer melt molecule has ~5.8 neighbours and
            6-7 % pass the P2 test by chance; over the 12 nearest 0.1 %
            (benchmarks/label_rates.py, docs/results.md). Ten Wolde needs >= 8;
            "chill_plus" needs 0 (CHILL+ asks for exactly 4 centres within the cutoff).
        label_min_neighbours: with ``label_neighbours = 0``: a molecule with fewer
            centres within ``label_cutoff`` is not crystal (0 = off); at most the
            crystal's own count (the trimers have 6 within 1.5).
        label_target: "any" (the criterion alone), "close_packed" ("ten_wolde" only:
            crystal only where the 12 nearest centres are fcc/hcp-like by a
            common-neighbour test, so bcc-like and defective packings that ten Wolde
            calls solid are not; ``latentcv.cv_models.analysis.labels``) or "fcc" (the
            same test asking for fcc's 421 signature: hcp stacking is not crystal).
    """

    trajectories: List[Dict[str, Any]] = field(default_factory=list)
    dataset: str = ""
    synthetic: Dict[str, Any] = field(default_factory=dict)
    n_blocks: int = 5
    val_fraction: float = 0.2
    gap: int = 0
    molecule_labels: str = "frame"
    label_cutoff: float = 0.0
    p2_threshold: float = 0.5
    label_neighbours: int = 12
    label_min_neighbours: int = 0
    label_target: str = "any"

    def validate(self) -> None:
        sources = sum([bool(self.trajectories), bool(self.dataset), bool(self.synthetic)])
        if sources != 1:
            raise ConfigError("[data]: give exactly one of `trajectories`, `dataset` or `synthetic`")
        for k, t in enumerate(self.trajectories):
            try:
                check_trajectory_table(t, f"data.trajectories[{k}]")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if self.synthetic:
            _check_synthetic(self.synthetic)
        _check(self.n_blocks >= 1, "[data] n_blocks must be >= 1")
        _check(0.0 <= self.val_fraction < 1.0, "[data] val_fraction must be in [0, 1)")
        _check(self.gap >= 0, "[data] gap must be >= 0")
        _check(self.molecule_labels in MOLECULE_LABELS, f"[data] molecule_labels must be one of {MOLECULE_LABELS}")
        _check(self.label_cutoff >= 0, "[data] label_cutoff must be >= 0 (0 = the model cutoff)")
        _check(-0.5 < self.p2_threshold < 1.0, "[data] p2_threshold must be in (-0.5, 1)")
        self._validate_label_neighbours()

    def _validate_label_neighbours(self) -> None:
        """The checks of ``label_neighbours``, ``label_min_neighbours``, ``label_target``."""
        k, tw = self.label_neighbours, self.molecule_labels == "ten_wolde"
        _check(k >= 0, "[data] label_neighbours must be >= 0 (0 = every centre within label_cutoff)")
        if self.molecule_labels == "chill_plus":
            self._validate_chill_plus()
        _check(
            not (tw and 0 < k < 8),
            f"[data] label_neighbours = {k}: ten Wolde needs 8 solid bonds, so 0 or >= 8",
        )
        _check(self.label_min_neighbours >= 0, "[data] label_min_neighbours must be >= 0 (0 = off)")
        _check(
            not (self.label_min_neighbours and k),
            "[data] label_min_neighbours applies to labels over label_cutoff: set label_neighbours = 0 with it",
        )
        _check(self.label_target in LABEL_TARGETS, f"[data] label_target must be one of {LABEL_TARGETS}")
        _check(
            self.label_target == "any" or tw,
            f'[data] label_target = "{self.label_target}" needs molecule_labels = "ten_wolde" '
            f'(molecule_labels = "{self.molecule_labels}" allows only label_target = "any")',
        )

    def _validate_chill_plus(self) -> None:
        """CHILL+ labels: every centre within an explicit ``label_cutoff``, no count rules."""
        why = 'molecule_labels = "chill_plus" judges every centre within label_cutoff (CHILL+ needs exactly 4)'
        _check(self.label_neighbours == 0, f"[data] {why}: set label_neighbours = 0")
        _check(self.label_min_neighbours == 0, f"[data] {why}: label_min_neighbours must be 0")
        _check(
            self.label_cutoff > 0,
            f"[data] {why}: set label_cutoff to the first minimum of the centre-centre g(r) (3.5 for water in Å)",
        )


MOLECULE_LABELS = ("frame", "ten_wolde", "local_p2", "chill_plus")  # = ("frame", *analysis.labels.LABEL_CRITERIA)
LABEL_TARGETS = ("any", "close_packed", "fcc")  # = analysis.labels.LABEL_TARGETS
_LAYERS = ("egnn", "mp", "attention")
_POOLS = ("mean", "sum", "attention", "diffpool")
_AGGRS = ("sum", "mean")


@dataclass
class ModelConfig:
    """Architecture of the hierarchical graph autoencoder (see docs/model.md).

    Lengths are in the length unit of the data.

    Attributes:
        atoms_per_molecule: A; 0 = take it from the data.
        species: species index of each atom of a molecule (length A); empty = from data.
        n_species: size of the species embedding table; 0 = from data.
        cutoff: D_t, the cutoff of the molecule-CENTRE graph: pairs of molecule centres
            closer than D_t are its edges, weighted by a smooth switch that is 1 up to
            ``r_on`` and falls to 0 at D_t. Choose it at about the first minimum of the
            crystal's centre-centre g(r) after its first peak, so that the first
            neighbour shell is inside (1.5 for LJ fcc in sigma); ``latentcv suggest-cutoff
            TRAJ`` prints it. Edges, and the cost per MD step, grow as D_t cubed.
        r_on: distance where the switch starts to fall from 1 (0 <= r_on < cutoff);
            about 0.8 x cutoff.
        intra_cutoff: range of the radial basis inside a molecule.
        hidden: width of the stage-1 atom and molecule features.
        rbf: number of radial basis functions.
        stage1_layer: "egnn" (E(n)-equivariant), "mp" (message passing) or "attention".
        stage1_layers: number of stage-1 layers (0 allowed).
        stage1_aggr: aggregation of "mp" layers: "sum" or "mean".
        stage1_pool: atoms -> molecule pooling: "mean", "sum", "attention", "diffpool".
        diffpool_clusters: K of DiffPool.
        orientation_channels: equivariant orientation channels per molecule (vectors and
            rank-2 tensors whose products become molecule-graph edge features).
        concat: concatenation layer: "switch" (edge weight = switched distance) or
            "attention" (switch times a learned gate).
        moment_channels: AngularMoments channels (learned radial/species weights).
        moment_degrees: degrees l of the angular moments (default [6], the Steinhardt
            q6 of crystal detection; add 4 to tell fcc/hcp/bcc apart, at ~20 % more cost
            per MD step); empty: ``max_rank, max_rank - moment_step, ...`` >= 1.
        max_rank: highest degree when ``moment_degrees`` is empty.
        moment_step: step between the degrees when ``moment_degrees`` is empty.
        bond_order: add the neighbour-shell bond-order correlations of the angular
            moments (the smooth ingredients of the ten Wolde solid-bond count) to the
            molecule features: what lets the per-molecule head find crystalline
            molecules at interfaces and in small nuclei.
        stage2_hidden: width of the molecule-graph features.
        stage2_layers: attention layers on the molecule graph.
        stage2_edge_values: stage-2 attention values depend on the edge features too
            (default off: values per node, edges enter through the attention weights;
            several times cheaper per MD step).
        stage2_attention_hidden: hidden width of the stage-2 attention-logit MLP
            (0: linear logits in the projected node and edge features, the cheapest;
            -1: stage2_hidden).
        heads: attention heads.
        molecule_latent: width of the per-molecule latents.
        global_pool: "mean", "sum", "attention" or "diffpool".
        latent_dim: dimension d of the global latent z.
        variational: add a KL term (the encoder still outputs the mean).
        dtype: "float64" or "float32".
        nucleus_fraction: the ``n_nucleus`` output counts a crystal-like molecule when about
            this fraction of its (switch-weighted) neighbours is crystal-like too: half at
            this fraction (a smooth step; not trained, so it can be changed before export).
        nucleus_width: the width of that step, in neighbour-fraction units.
        largest_radius: the ``n_largest`` output (the largest nucleus) counts the nucleated
            mass within this radius of a molecule (length unit; 0 = 4 × cutoff); not trained.
        largest_sharpness: β of its soft maximum over molecules, per molecule.
    """

    atoms_per_molecule: int = 0
    species: List[int] = field(default_factory=list)
    n_species: int = 0
    cutoff: float = 1.5
    r_on: float = 1.2
    intra_cutoff: float = 1.0
    hidden: int = 16
    rbf: int = 8
    stage1_layer: str = "egnn"
    stage1_layers: int = 2
    stage1_aggr: str = "sum"
    stage1_pool: str = "mean"
    diffpool_clusters: int = 2
    orientation_channels: int = 4
    concat: str = "switch"
    moment_channels: int = 4
    max_rank: int = 6
    moment_step: int = 2
    moment_degrees: List[int] = field(default_factory=lambda: [6])
    bond_order: bool = True
    stage2_hidden: int = 16
    stage2_layers: int = 1
    stage2_edge_values: bool = False
    stage2_attention_hidden: int = 0
    heads: int = 2
    molecule_latent: int = 8
    global_pool: str = "attention"
    latent_dim: int = 2
    variational: bool = False
    dtype: str = "float64"
    nucleus_fraction: float = 0.5
    nucleus_width: float = 0.05
    largest_radius: float = 0.0
    largest_sharpness: float = 0.2

    def validate(self) -> None:
        _check(0.0 < self.nucleus_fraction < 1.0, "[model] nucleus_fraction must be in (0, 1)")
        _check(0.0 < self.nucleus_width <= 1.0, "[model] nucleus_width must be in (0, 1]")
        _check(self.largest_radius >= 0.0, "[model] largest_radius must be >= 0 (0: 4 x cutoff)")
        _check(self.largest_sharpness > 0.0, "[model] largest_sharpness must be > 0")
        _check(self.atoms_per_molecule >= 0, "[model] atoms_per_molecule must be >= 0 (0 = from data)")
        _check(self.cutoff > 0, "[model] cutoff must be > 0")
        _check(0 <= self.r_on < self.cutoff, f"[model] r_on must be in [0, cutoff={self.cutoff})")
        _check(self.intra_cutoff > 0, "[model] intra_cutoff must be > 0")
        _check(self.stage1_layer in _LAYERS, f"[model] stage1_layer must be one of {_LAYERS}")
        _check(self.stage1_aggr in _AGGRS, f"[model] stage1_aggr must be one of {_AGGRS}")
        _check(self.stage1_pool in _POOLS, f"[model] stage1_pool must be one of {_POOLS}")
        _check(self.global_pool in _POOLS, f"[model] global_pool must be one of {_POOLS}")
        _check(self.concat in ("switch", "attention"), "[model] concat must be 'switch' or 'attention'")
        _check(self.dtype in ("float64", "float32"), "[model] dtype must be 'float64' or 'float32'")
        _check(self.moment_step >= 1, "[model] moment_step must be >= 1")
        _check(
            all(isinstance(l, int) and 1 <= l <= 12 for l in self.moment_degrees),
            "[model] moment_degrees must be integers in [1, 12]",
        )
        _check(
            bool(self.moment_degrees) or self.max_rank >= 1 or self.moment_channels == 0,
            "[model] max_rank must be >= 1 when moment_degrees is empty (moment_channels = 0 switches the "
            "angular moments off)",
        )
        _check(self.stage2_attention_hidden >= -1, "[model] stage2_attention_hidden must be >= -1 (-1: stage2_hidden)")
        for name in ("hidden", "rbf", "stage2_hidden", "heads", "molecule_latent", "latent_dim", "diffpool_clusters"):
            _check(getattr(self, name) >= 1, f"[model] {name} must be >= 1")
        for name in ("stage1_layers", "stage2_layers", "orientation_channels", "moment_channels", "max_rank"):
            _check(getattr(self, name) >= 0, f"[model] {name} must be >= 0")
        _check(self.stage2_hidden % self.heads == 0, "[model] stage2_hidden must be a multiple of heads")
        _check(
            self.hidden % self.heads == 0 or self.stage1_layer != "attention",
            "[model] hidden must be a multiple of heads for stage1_layer = 'attention'",
        )
        _check(
            self.n_species >= 0 and all(k >= 0 for k in self.species),
            "[model] species and n_species must be >= 0 (species indices count from 0)",
        )
        if self.species and self.atoms_per_molecule:
            _check(len(self.species) == self.atoms_per_molecule, "[model] species must have atoms_per_molecule entries")


@dataclass
class TrainingConfig:
    """Optimisation, losses, output.

    Attributes:
        output_dir: where checkpoints, metrics and plots go (relative to the config file).
        epochs: maximum number of epochs.
        batch_size: frames per batch.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        seed: fixes initialisation, batch order and negative sampling.
        patience: early stopping after this many epochs without validation improvement
            (0 = off).
        min_delta: the decrease of the validation loss that counts as an improvement.
        resume: continue from ``output_dir/checkpoint_last.pt`` if present.
        init_from: start from the weights of this checkpoint (fine-tuning, e.g. by
            ``latentcv refine``; same ``[model]``), relative to the config file; "" = random.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        threads: torch CPU threads (keep it small on shared machines).
        processes: data-parallel training processes on this machine (each with ``threads``
            threads); every batch is shared among them and the model is the one-process
            model up to summation order (cv_models/distributed.py).
        w_adj: loss weight of the adjacency reconstruction (molecule-graph edges vs
            ``negatives`` sampled non-edges).
        w_feat: loss weight of the node-feature reconstruction.
        w_kl: loss weight of the KL term (only with ``[model] variational = true``).
        w_molecule: loss weight of the per-molecule crystal head (BCE against the frame
            label of each molecule; labelled frames only).
        w_separation: loss weight of the frame-level latent separation (crystal vs melt
            on z; labelled frames only).
        negatives: random non-edge pairs per molecule for the adjacency loss.
        progress: show a tqdm progress bar (false: one line per epoch instead).
    """

    output_dir: str = "runs/latentcv"
    epochs: int = 30
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 0
    patience: int = 10
    min_delta: float = 1e-4
    resume: bool = True
    init_from: str = ""
    device: str = "auto"
    threads: int = 1
    processes: int = 1
    w_adj: float = 1.0
    w_feat: float = 1.0
    w_kl: float = 1e-3
    w_molecule: float = 1.0
    w_separation: float = 1.0
    negatives: int = 2
    progress: bool = True

    def validate(self) -> None:
        _check(self.epochs >= 0, "[training] epochs must be >= 0")
        _check(self.batch_size >= 1, "[training] batch_size must be >= 1")
        _check(self.lr > 0, "[training] lr must be > 0")
        _check(self.weight_decay >= 0, "[training] weight_decay must be >= 0")
        _check(self.min_delta >= 0, "[training] min_delta must be >= 0")
        _check(0 <= self.seed < 2**32, "[training] seed must be in [0, 2**32)")
        _check(self.patience >= 0, "[training] patience must be >= 0")
        _check(self.device in ("auto", "cpu", "cuda"), "[training] device must be 'auto', 'cpu' or 'cuda'")
        _check(self.threads >= 1, "[training] threads must be >= 1")
        _check(self.processes >= 1, "[training] processes must be >= 1")
        _check(self.negatives >= 0, "[training] negatives must be >= 0")
        for name in WEIGHT_FIELDS:
            _check(getattr(self, name) >= 0, f"[training] {name} must be >= 0")


@dataclass
class Config:
    """A whole run: ``data``, ``model``, ``training``; ``base_dir`` resolves relative paths."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    base_dir: str = "."

    def validate(self) -> "Config":
        self.data.validate()
        self.model.validate()
        self.training.validate()
        return self

    def to_dict(self) -> Dict[str, Any]:
        return {
            "data": dataclasses.asdict(self.data),
            "model": dataclasses.asdict(self.model),
            "training": dataclasses.asdict(self.training),
        }

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p

    @classmethod
    def from_dict(cls, d: Dict[str, Any], base_dir: str = ".") -> "Config":
        if not isinstance(d, dict):
            raise ConfigError("a config must be a table/object with `data`, `model`, `training`")
        for key in d:
            if key not in ("data", "model", "training"):
                raise ConfigError(f"unknown top-level key {key!r}: a config has the tables data, model, training")
        cfg = cls(
            data=_build(DataConfig, d.get("data", {}), "data"),
            model=_build(ModelConfig, d.get("model", {}), "model"),
            training=_build(TrainingConfig, d.get("training", {}), "training"),
            base_dir=str(base_dir),
        )
        return cfg.validate()


def _check(ok: bool, msg: str) -> None:
    if not ok:
        raise ConfigError(msg)


def _unknown_key(path: str, key: str, valid: Sequence[str]) -> ConfigError:
    """The error of an unknown key ``path.key``: the valid keys, and the closest ones."""
    close = difflib.get_close_matches(str(key), list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown key {path}.{key}{hint}; valid keys: {', '.join(valid)}")


# ``[data] synthetic`` keys that must be >= 1 (int) or > 0 / >= 0 (float); the keys and
# types are those of synthetic_dataset's signature.
_SYNTHETIC_MIN = {
    "atoms_per_molecule": 1,
    "n_cells": 1,
    "trajectories_per_phase": 1,
    "frames_per_trajectory": 1,
    "noise": 0.0,
    "seed": 0,
}


def _check_synthetic(options: Dict[str, Any]) -> None:
    """``[data] synthetic``: only the keyword arguments of ``synthetic_dataset``, of its types."""
    from .synthetic import synthetic_dataset

    hints = get_type_hints(synthetic_dataset)
    valid = [p for p in inspect.signature(synthetic_dataset).parameters]
    for key, value in options.items():
        if key not in valid:
            raise _unknown_key("data.synthetic", key, valid)
        if not _type_ok(value, hints[key]):
            raise ConfigError(f"data.synthetic.{key} = {value!r:.80}: expected {_type_name(hints[key])}")
        low = _SYNTHETIC_MIN.get(key)
        if low is not None and not value >= low:
            raise ConfigError(f"data.synthetic.{key} = {value!r}: must be >= {low}")
    if "density" in options and not options["density"] > 0:
        raise ConfigError(f"data.synthetic.density = {options['density']!r}: must be > 0")


_TYPE_NAMES = {
    float: ("a finite number", "finite numbers"),
    int: ("an integer", "integers"),
    bool: ("true or false", "booleans"),
    str: ("a string", "strings"),
}


def _type_name(tp: Any) -> str:
    """How a message names a field type: ``a number``, ``a list of integers``, ``a table`` ..."""
    if tp in _TYPE_NAMES:
        return _TYPE_NAMES[tp][0]
    origin = getattr(tp, "__origin__", None)
    if origin in (list, List):
        return f"a list of {_TYPE_NAMES.get(tp.__args__[0], ('', 'tables'))[1]}"
    if origin in (dict, Dict):
        return "a table"
    return getattr(tp, "__name__", str(tp))


def _type_ok(value: Any, tp: Any) -> bool:
    origin = getattr(tp, "__origin__", None)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is bool:
        return isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (list, List):
        (inner,) = tp.__args__
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if origin in (dict, Dict):
        return isinstance(value, dict)
    if tp is Any:
        return True
    return True


def _build(cls: Any, values: Dict[str, Any], section: str) -> Any:
    """``cls`` from the table ``[section]``: unknown keys and ill-typed (or non-finite)
    values are ConfigErrors naming ``section.key`` and what is valid."""
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table, not {values!r:.80}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in values:
        if k not in names:
            raise _unknown_key(section, k, names)
    kwargs = {}
    for k, v in values.items():
        if not _type_ok(v, hints[k]):
            raise ConfigError(f"{section}.{k} = {v!r:.80}: expected {_type_name(hints[k])}")
        kwargs[k] = float(v) if hints[k] is float else v
    return cls(**kwargs)


def load_config(path: str | Path, overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> Config:
    """Read a ``.toml`` or ``.json`` config file and validate it.

    Args:
        path: the file; relative paths inside it are relative to its folder.
        overrides: ``{"training": {"epochs": 2}}`` style values applied on top.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist or is not a file")
    try:
        text = p.read_text()
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {p} is not UTF-8 text: {e}") from None
    try:
        if p.suffix == ".json":
            d = json.loads(text)
        elif p.suffix == ".toml":
            d = tomllib.loads(text)
        else:
            raise ConfigError(f"config {p}: use a .toml or .json file")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"config {p} is not valid {p.suffix[1:].upper()}: {e}") from e
    for sec, vals in (overrides or {}).items():
        table = d.setdefault(sec, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{sec}] must be a table")
        table.update(vals)
    return Config.from_dict(d, base_dir=str(p.parent.resolve()))


_SECTIONS = ("data", "model", "training")


def parse_overrides(items: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``["model.cutoff=1.6", "training.lr=1e-3"]`` (``latentcv train --set``) as
    :func:`load_config` overrides ``{"model": {"cutoff": 1.6}, "training": {"lr": 0.001}}``.

    VALUE is a TOML literal (``1.6``, ``true``, ``"mp"``, ``[6, 4]``, ``{ n_cells = 2 }``);
    a bare word that is not valid TOML (``device=cpu``) is taken as a string. The keys and
    values are then checked by the same validation as the config file.
    """
    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        key, eq, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not eq or not dot or not name or "." in name:
            raise ConfigError(
                f"--set {item!r}: write SECTION.KEY=VALUE, e.g. --set model.cutoff=1.6 "
                f"(SECTION one of {', '.join(_SECTIONS)})"
            )
        if section not in _SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; one of {', '.join(_SECTIONS)}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            if not text.strip() or any(c in text for c in "[]{}\"'=,"):
                raise ConfigError(
                    f"--set {item!r}: VALUE is not a TOML literal (numbers 1.6, true/false, "
                    '"text", lists [6, 4], tables { a = 1 })'
                ) from None
            value = text.strip()
        out.setdefault(section, {})[name.strip()] = value
    return out


def merge_overrides(*layers: Optional[Dict[str, Dict[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """Merge override dicts section by section; later layers win."""
    out: Dict[str, Dict[str, Any]] = {}
    for layer in layers:
        for sec, vals in (layer or {}).items():
            out.setdefault(sec, {}).update(vals)
    return out
