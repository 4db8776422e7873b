"""The demo's four panels (``demo.png``): the biased CV and the bias, the solid fraction
judged independently, the free-energy profile, the latent map of the training frames.
Each function draws one matplotlib axis."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentcv.cv_models.app.metad_run import MetadRun
from latentcv.cv_models.systems import SYSTEMS


def cv_and_bias(ax, steps: np.ndarray, cv: np.ndarray, bias: np.ndarray, name: str) -> None:
    """The biased CV and the bias (twin axis) against the MD step."""
    ax.plot(steps, cv, lw=0.8)
    ax.set_ylabel(f"cv.{name}")
    ax.set_xlabel("MD step")
    ax.set_title("the biased CV")
    ax2 = ax.twinx()
    ax2.plot(steps, bias, lw=0.6, color="C1")
    ax2.set_ylabel("bias (ε)", color="C1")


def solid_fraction(ax, solid: dict, control: MetadRun | None, first_step: int | None, threshold: float) -> None:
    """Solid fraction of the biased run (freud and latentcv ten Wolde) and of the control."""
    ax.plot(solid["steps"], solid["freud"], "o-", ms=3, color="C2", label="biased (freud ten Wolde)")
    ax.plot(solid["steps"], solid["ten_wolde"], "-", lw=0.7, color="C2", alpha=0.5, label="biased (latentcv ten Wolde)")
    if control is not None:
        ax.plot(control.steps, control.fraction, "s--", ms=3, color="0.5", label="unbiased control (freud)")
    ax.axhline(threshold, color="k", lw=0.6, ls=":")
    if first_step is not None:
        ax.axvline(first_step, color="C3", lw=0.8, label=f"crystallised at step {first_step}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("MD step")
    ax.set_ylabel("solid fraction")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("crystal, judged independently of the CV")


def free_energy(ax, fes: np.ndarray | None, name: str) -> None:
    """F(cv) in kT from PLUMED sum_hills (an empty panel when sum_hills failed)."""
    if fes is not None:
        ax.plot(fes[:, 0], fes[:, 1] / SYSTEMS["lj"].temperature, lw=1.0)
        ax.set_xlabel(f"cv.{name}")
        ax.set_ylabel("F (kT), from the bias")
    ax.set_title("free-energy profile (PLUMED sum_hills)")


def latent_map(ax, out: Path, max_frames: int = 300) -> None:
    """Latent z of (a subsample of) the training frames, coloured by their solid fraction."""
    import torch

    from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame
    from latentcv.cv_models.data.dataset import Dataset
    from latentcv.cv_models.batching import encode_frames, prepare_samples
    from latentcv.cv_models.checkpoint import load_encoder

    frames = list(Dataset.load(out / "data" / "lj.npz"))
    frames = [frames[k] for k in np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)]
    enc = load_encoder(out / "train" / "checkpoint.pt")
    z = encode_frames(enc, prepare_samples(frames, 1, enc.cutoff, enc.crystal_centroid.dtype), torch.device("cpu"))["z"]
    z = z.double().numpy()
    solid = [ten_wolde_frame(f, TenWoldeConfig(cutoff=1.5)).solid_fraction for f in frames]
    y = z[:, 1] if z.shape[1] > 1 else np.zeros(len(z))
    sc = ax.scatter(z[:, 0], y, c=solid, cmap="viridis", s=10, vmin=0, vmax=1)
    ax.figure.colorbar(sc, ax=ax, label="ten Wolde solid fraction")
    ax.set_xlabel("z0")
    ax.set_ylabel("z1")
    ax.set_title("latent map: crystal, melt, interface, freezing frames")
