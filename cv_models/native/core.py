"""The C++ core of latentcv (cpp/) from Python: the same code LATENT_CV runs in PLUMED.

- :class:`Model`: loads a deployable model file (docs/model-contract.md) and evaluates
  its outputs and their exact gradients on positions [N, 3] and a cell [3, 3].
- :func:`read_model_info`: a model file's checked metadata (:class:`ModelInfo`), without
  building a model (no device, threads or warm-up).
- :func:`build_pair_list`: the core's molecule-pair neighbour list.
- ``CONTRACT_VERSION``: the model-file contract version this build reads.
- ``LAMMPS_UNIT_STYLES``: the unit table compiled into ``fix plumed`` (cpp/latentcv/lammps_units.h),
  rows (style, length unit, nm, kJ/mol, ps, amu, e); tests/test_units.py compares it with
  :data:`latentcv.cv_models.units.LAMMPS_UNIT_STYLES`.

The compiled module lives in ``latentcv/cv_models/_lib`` (``make build``).
"""

from __future__ import annotations

import torch  # noqa: F401  (loads libtorch, which the compiled module links)

from latentcv.cv_models.native.paths import MissingNativeFile

try:
    from latentcv.cv_models._lib._core import (
        CONTRACT_VERSION,
        LAMMPS_UNIT_STYLES,
        Model,
        ModelInfo,
        build_pair_list,
        read_model_info,
    )
except ImportError as exc:  # not built, or built against another torch
    raise MissingNativeFile(
        f"latentcv's C++ core could not be imported ({exc}). Run `make build` in the latentcv checkout."
    ) from exc

__all__ = ["CONTRACT_VERSION", "LAMMPS_UNIT_STYLES", "Model", "ModelInfo", "build_pair_list", "read_model_info"]
