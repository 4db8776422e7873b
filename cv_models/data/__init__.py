"""Trajectory data: frames (positions, box, molecules, species, phase label)."""

from .frames import CRYSTAL, MELT, UNLABELED, Frame

__all__ = ["Frame", "CRYSTAL", "MELT", "UNLABELED"]
