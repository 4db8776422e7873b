"""Model-independent analysis of frames (order parameters used to judge learned CVs)."""

from .rdf import CutoffSuggestion, RadialDistribution, centre_rdf, first_minimum, suggest_cutoff
from .tenwolde import TenWoldeConfig, TenWoldeResult, spherical_harmonics, steinhardt, ten_wolde, ten_wolde_frame

__all__ = [
    "TenWoldeConfig",
    "TenWoldeResult",
    "spherical_harmonics",
    "steinhardt",
    "ten_wolde",
    "ten_wolde_frame",
    "CutoffSuggestion",
    "RadialDistribution",
    "centre_rdf",
    "first_minimum",
    "suggest_cutoff",
]
