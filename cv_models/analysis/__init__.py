"""Model-independent analysis of frames (order parameters used to judge learned CVs)."""

from .tenwolde import TenWoldeConfig, TenWoldeResult, spherical_harmonics, steinhardt, ten_wolde, ten_wolde_frame

__all__ = ["TenWoldeConfig", "TenWoldeResult", "spherical_harmonics", "steinhardt", "ten_wolde", "ten_wolde_frame"]
