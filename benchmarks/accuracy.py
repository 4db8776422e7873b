"""Accuracy from scratch: generate → train → score, for LJ and dimers.

For each system (tiny preset: 108 molecules, 3 crystal + 3 melt replicas of 40 frames)
this script

1. generates the data with :mod:`latentcv.cv_models.generate` (LAMMPS in-process),
2. writes a training config (the ``[model]`` defaults of :class:`latentcv.cv_models.config.ModelConfig`
   with the system's cutoff) and trains with :func:`latentcv.cv_models.training.train_from_config`,
3. scores the held-out trajectory blocks with :func:`latentcv.cv_models.diagnostics.heldout_report`
   (frame accuracy of the nearest latent centroid, per-molecule head p > 0.5 vs the ten
   Wolde solid-bond criterion),
4. for LJ, also scores the per-molecule head on a **transition** trajectory (melt quenched
   to T = 0.45, where it crystallises spontaneously; 500 atoms, unlabeled, never trained
   on): agreement with ten Wolde solid labels per molecule on the frames whose ten Wolde
   solid fraction is in [0.1, 0.9], i.e. partially crystallised frames, where a head that
   merely copies the frame's phase cannot score well.

Usage::

    .venv/bin/python benchmarks/accuracy.py [--workdir /tmp/latentcv_accuracy] [--systems lj dimers]

Runs on one thread, about 3-8 minutes on one core (data generation included; reused
when the work folder already has it). Prints one table. ``--model KEY=VALUE`` overrides
``[model]`` defaults (architecture experiments).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from latentcv.cv_models.analysis.tenwolde import TenWoldeConfig, ten_wolde_frame
from latentcv.cv_models.generate import GeneratorConfig, generate
from latentcv.cv_models.systems import SYSTEMS
from latentcv.cv_models.batching import encode_frames, prepare_samples
from latentcv.cv_models.checkpoint import load_encoder
from latentcv.cv_models.diagnostics import heldout_report
from latentcv.cv_models.training import train_from_config

# per system: model cutoff / r_on on molecule centres, epochs
SETTINGS = {
    "lj": dict(cutoff=1.5, r_on=1.2, epochs=20),
    "dimers": dict(cutoff=1.6, r_on=1.3, epochs=12),
}


def write_config(workdir: Path, system: str, dataset: Path, model_overrides: list[str] | None = None) -> Path:
    """A TOML training config (model defaults + the system's cutoff, plus ``KEY = VALUE``
    TOML lines from ``model_overrides``) in ``workdir``."""
    s = SETTINGS[system]
    extra = "".join(f"{line}\n" for line in (model_overrides or []))
    text = f"""[data]
dataset = "{dataset}"
n_blocks = 5
val_fraction = 0.2
[model]
cutoff = {s["cutoff"]}
r_on = {s["r_on"]}
{extra}[training]
epochs = {s["epochs"]}
batch_size = 8
patience = 6
threads = 1
progress = false
resume = false
output_dir = "{workdir / ("run_" + system)}"
"""
    path = workdir / f"{system}.toml"
    path.write_text(text)
    return path


def transition_agreement(ckpt: Path, workdir: Path, lo: float = 0.1, hi: float = 0.9) -> dict:
    """Per-molecule head (p > 0.5) vs ten Wolde on partially crystallised LJ frames."""
    cfg = GeneratorConfig.preset(
        "tiny",
        "lj",
        phases=("transition",),
        n_cells=5,
        transition_steps=40000,
        dump_every=200,
        quench_steps=2000,
        seed=11,
    )
    frames = list(generate(cfg, workdir / "gen_lj_transition", progress=False, reuse=True))
    enc = load_encoder(ckpt)
    tw_cfg = TenWoldeConfig(cutoff=SYSTEMS["lj"].tenwolde_cutoff)
    picked, solid = [], []
    fractions = []
    for f in frames:
        r = ten_wolde_frame(f, tw_cfg)
        fractions.append(r.solid_fraction)
        if lo <= r.solid_fraction <= hi:
            picked.append(f)
            solid.append(r.solid)
    if not picked:
        return {
            "frames": len(frames),
            "partial_frames": 0,
            "molecules": 0,
            "agreement": float("nan"),
            "max_solid_fraction": float(max(fractions, default=0.0)),
        }
    samples = prepare_samples(picked, enc.atoms_per_molecule, enc.cutoff, enc.crystal_centroid.dtype)
    out = encode_frames(enc, samples, torch.device("cpu"))
    agree = tot = 0
    tp = fp = fn = 0
    for p, s in zip(out["p_molecule"], solid):
        pred = p.numpy() > 0.5
        agree += int((pred == s).sum())
        tot += len(s)
        tp += int((pred & s).sum())
        fp += int((pred & ~s).sum())
        fn += int((~pred & s).sum())
    return {
        "frames": len(frames),
        "partial_frames": len(picked),
        "molecules": tot,
        "agreement": agree / tot,
        "solid_recall": tp / max(tp + fn, 1),
        "solid_precision": tp / max(tp + fp, 1),
        "max_solid_fraction": float(max(fractions)),
    }


def run_system(system: str, workdir: Path, model_overrides: list[str] | None = None) -> dict:
    gen = GeneratorConfig.preset(
        "tiny", system, phases=("crystal", "melt"), replicas=3, prod_steps=4000, dump_every=100
    )
    t0 = time.perf_counter()
    ds = generate(gen, workdir / f"gen_{system}", progress=False, reuse=True)
    npz = workdir / f"{system}.npz"
    ds.save(str(npz))
    t_gen = time.perf_counter() - t0
    cfg = write_config(workdir, system, npz, model_overrides)
    t0 = time.perf_counter()
    ckpt = train_from_config(str(cfg))
    t_train = time.perf_counter() - t0
    rep = heldout_report(str(cfg), str(ckpt), SYSTEMS[system].tenwolde_cutoff)
    rep.update(system=system, generate_s=t_gen, train_s=t_train, checkpoint=str(ckpt))
    if system == "lj":
        rep["transition"] = transition_agreement(Path(ckpt), workdir)
    return rep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default="/tmp/latentcv_accuracy")
    ap.add_argument("--systems", nargs="+", default=["lj", "dimers"], choices=sorted(SETTINGS))
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument(
        "--model",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="[model] overrides as TOML, e.g. stage2_layers=1 'moment_degrees=[6]'",
    )
    a = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = [run_system(s, work, a.model) for s in a.systems]
    print()
    print(
        "| system | held-out frames | frame accuracy | head vs ten Wolde (held-out) | "
        "transition: partial frames / molecules | head vs ten Wolde (transition) | train time |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        t = r.get("transition")
        if t:
            tcol = f"{t['partial_frames']} / {t['molecules']}"
            acol = (
                (
                    f"{100 * t['agreement']:.1f} % (solid recall {100 * t['solid_recall']:.0f} %, "
                    f"precision {100 * t['solid_precision']:.0f} %)"
                )
                if t["molecules"]
                else f"n/a (max solid fraction {t['max_solid_fraction']:.2f})"
            )
        else:
            tcol = acol = "–"
        print(
            f"| {r['system']} | {r['n_val_frames']} | {100 * r['frame_accuracy']:.1f} % | "
            f"{100 * r['molecule_agreement_ten_wolde']:.1f} % | {tcol} | {acol} | {r['train_s'] / 60:.1f} min |"
        )
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
