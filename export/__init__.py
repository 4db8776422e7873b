"""Turns a CV model into the deployable TorchScript file of docs/model-contract.md.

``save_deployable`` is the one function that writes model files; everything the C++ side
reads goes through it.
"""

from .deploy import CONTRACT_VERSION, DeployableCV, ModelCard, load_deployable, save_deployable

__all__ = ["CONTRACT_VERSION", "DeployableCV", "ModelCard", "load_deployable", "save_deployable"]
