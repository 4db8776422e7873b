"""``latentcv fes``: reweighting, barrier, CNT fit, rate and diffusion against independent
computations (PLUMED's own bias and c(t), exact profiles, hand-made random walks)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chain_helpers import run_plumed_driver
from latentcv.cv_models.analysis import fes
from latentcv.cv_models.data.plumed_table import read_plumed_table


def test_hills_bias_and_ct_equal_plumeds(tmp_path: Path):
    """The bias summed from PLUMED's HILLS file (stretched kernels, γ/(γ−1) heights) equals
    PLUMED's printed metad.bias, and tiwary_ct equals PLUMED's CALC_RCT on the same grid."""
    rng = np.random.default_rng(0)
    distance = np.clip(2.0 + np.cumsum(rng.normal(0, 0.05, 400)), 0.5, 4.5)
    frames = [(np.array([[1.0, 1, 1], [1 + x, 1, 1]]), 20 * np.eye(3)) for x in distance]
    dat = (
        "UNITS NATURAL\nd: DISTANCE ATOMS=1,2\n"
        "metad: METAD ARG=d SIGMA=0.1 HEIGHT=1.0 PACE=5 BIASFACTOR=10 TEMP=1.3 FILE=HILLS "
        "CALC_RCT GRID_MIN=0 GRID_MAX=5 GRID_BIN=2000 RCT_USTRIDE=1\n"
        "PRINT ARG=d,metad.bias,metad.rct STRIDE=1 FILE=COLVAR\n"
    )
    done = run_plumed_driver(tmp_path, dat, frames)
    assert done.returncode == 0, done.stderr[-2000:]
    colvar, hills = read_plumed_table(tmp_path / "COLVAR"), fes.Hills.read(tmp_path / "HILLS")
    assert hills.stretched and hills.biasfactor == 10
    time, s = colvar.column("time"), colvar.column("d")
    bias = [hills.kernels(np.array([x]))[: np.searchsorted(hills.time, t)].sum() for t, x in zip(time, s)]
    assert colvar.column("metad.bias").max() > 5  # the bias did grow
    np.testing.assert_allclose(bias, colvar.column("metad.bias"), atol=1e-4)
    ct = fes.tiwary_ct(hills, time, 1.3, grid=np.linspace(0, 5, 2001))
    np.testing.assert_allclose(ct, colvar.column("metad.rct"), atol=1e-4)


def test_filled_free_energy_is_the_highest_bias_over_the_tempering_factor():
    """Two well-tempered hills written at height 1.2 (γ = 30) on the same centre: the bias is
    2 × 1.2 × 29/30 and the filled free energy 2 × 1.2; before the second hill, 1.2."""
    one = np.ones(2)
    hills = fes.Hills(np.array([1.0, 2.0]), 5 * one, one, 1.2 * one, 30.0)
    assert fes.filled_free_energy(hills, 2.0) == pytest.approx(2.4, rel=1e-6)
    assert fes.filled_free_energy(hills, 1.5) == pytest.approx(1.2, rel=1e-6)
    assert fes.filled_free_energy(hills, 0.5) == 0.0


def test_reweighting_recovers_the_unbiased_profile():
    """Samples drawn under a bias V reweighted by exp(βV) give the unbiased F(n) back."""
    rng = np.random.default_rng(1)
    n = np.arange(0, 60)
    kt = 0.7
    f_true = kt * (0.004 * (n - 10.0) ** 2)  # a well at n = 10, 7 kT high at n = 60 / kT ...
    v = -0.8 * f_true  # a bias that fills 80 % of it
    p_biased = np.exp(-(f_true + v) / kt)
    samples = rng.choice(n, size=400_000, p=p_biased / p_biased.sum())
    edges = np.arange(-0.5, 60.5, 1.0)
    f = fes.free_energy(samples, v[samples] / kt, edges, kt)
    np.testing.assert_allclose(f, f_true - f_true.min(), atol=0.08 * kt * 3)


def test_bins_of_tiny_weight_next_to_heavy_ones_keep_their_free_energy():
    """Weights 40 kT apart (a melt frame late in a run, a nucleus frame at an unfilled CV
    value): F of the light bin is 40 kT, not lost to round-off."""
    f = fes.free_energy(np.array([2.0, 35.0, 50.0]), np.array([0.0, -40.0, -50.0]), np.arange(-0.5, 60, 10), 1.0)
    np.testing.assert_allclose(f[[0, 3, 5]], [0.0, 40.0, 50.0], atol=1e-9)
    assert np.isnan(f[[1, 2, 4]]).all()


def test_barrier_and_cnt_fit_on_an_exact_cnt_profile():
    """A ΔG(n) = −nΔμ + Bn^(2/3) profile: the fit returns Δμ, B, n* = (2B/3Δμ)³ and
    ΔG* = 4B³/27Δμ²; the barrier finder returns the same top."""
    dmu, b = 0.25, 3.0
    n = np.arange(1.0, 2000.0)
    f = -n * dmu + b * np.cbrt(n) ** 2 + 5.0
    fit = fes.fit_cnt(n, f, np.full_like(f, 0.5), lo=5, hi=900)
    assert fit.dmu == pytest.approx(dmu, rel=1e-9) and fit.b == pytest.approx(b, rel=1e-9)
    assert fit.n_star == pytest.approx((2 * b / (3 * dmu)) ** 3) and fit.n_star == pytest.approx(512.0)
    assert fit.dg_star == pytest.approx(4 * b**3 / (27 * dmu**2)) == pytest.approx(64.0)
    top = fes.barrier(n, f, melt_below=3, drop=2.0)
    assert top.crossed and abs(top.n_star - 512) <= 1 and top.height == pytest.approx(64.0 + 5 - f[0], abs=0.01)
    volume = 1.2
    assert fit.surface_tension(volume) * (36 * np.pi) ** (1 / 3) * volume ** (2 / 3) == pytest.approx(b)


def test_barrier_not_crossed_when_the_profile_only_rises():
    n = np.arange(0.0, 50.0)
    assert not fes.barrier(n, 0.1 * n, melt_below=5, drop=2.0).crossed


def test_cnt_rate_formula_by_hand():
    dg, dmu, ns, d, rho, kt = 20.0, 0.3, 150.0, 0.02, 0.9, 1.0
    z = np.sqrt(dmu / (6 * np.pi * kt * ns))
    f_plus = 24 * d * ns ** (2 / 3) / rho ** (-2 / 3)
    assert fes.cnt_rate(dg, dmu, ns, d, rho, kt) == pytest.approx(rho * z * f_plus * np.exp(-dg / kt))
    assert np.isnan(fes.cnt_rate(dg, -dmu, ns, d, rho, kt))


def test_self_diffusion_of_a_wrapped_random_walk():
    """A Brownian walk with D = 0.05 (steps of variance 2DΔt per axis), wrapped into a
    triclinic cell: the unwrapped MSD slope gives D back."""
    rng = np.random.default_rng(2)
    d_true, dt = 0.05, 2.0
    cell = np.array([[6.0, 0, 0], [1.0, 6.0, 0], [0.5, 0.3, 6.0]])
    walk = np.cumsum(rng.normal(0, np.sqrt(2 * d_true * dt), (40, 3000, 3)), axis=0)
    frac = walk @ np.linalg.inv(cell)
    wrapped = (frac - np.floor(frac)) @ cell
    d = fes.self_diffusion(wrapped, np.repeat(cell[None], 40, axis=0), dt)
    assert d == pytest.approx(d_true, rel=0.05)


# ------------------------------------------------------------------- the command, end to end
def _write_run(folder: Path, n_series: list[int], bias: np.ndarray, seed: int, crystallised: bool = True) -> None:
    """A compare run of 256 LJ atoms (cells 4) whose frame k holds an fcc nucleus of about
    ``n_series[k]`` atoms in a disordered rest; COLVAR, HILLS, plumed.dat and result.json
    (crystallised 3 frames before the end, or never)."""
    from latentcv.cv_models.synthetic import fcc_positions

    rng = np.random.default_rng(seed)
    a = (4 / 1.0) ** (1 / 3)
    lattice, cell = fcc_positions(4, a)
    order = np.argsort(np.linalg.norm(lattice - cell.diagonal() / 2, axis=1))
    folder.mkdir(parents=True)
    with open(folder / "traj.dump", "w") as fh:
        for k, n in enumerate(n_series):
            pos = lattice.copy()
            pos[order[n:]] = rng.uniform(0, 4 * a, (len(lattice) - n, 3))
            fh.write(f"ITEM: TIMESTEP\n{k * 500}\nITEM: NUMBER OF ATOMS\n{len(pos)}\nITEM: BOX BOUNDS pp pp pp\n")
            fh.write("".join(f"0 {4 * a}\n" for _ in range(3)) + "ITEM: ATOMS id type x y z\n")
            fh.write("".join(f"{i + 1} 1 {p[0]} {p[1]} {p[2]}\n" for i, p in enumerate(pos)))
    steps = np.arange(0, 500 * len(n_series), 100)
    with open(folder / "COLVAR", "w") as fh:
        fh.write("#! FIELDS time cv.n_crystal metad.bias\n")
        for s in steps:
            fh.write(f"{s * 0.005} {n_series[s // 500]} {bias[s // 500]}\n")
    (folder / "HILLS").write_text(
        "#! FIELDS time cv.n_crystal sigma_cv.n_crystal height biasf\n#! SET kerneltype stretched-gaussian\n"
        + "".join(f"{t} {c} 20.0 1.2 30\n" for t, c in [(1.0, 5.0), (2.0, 8.0)])
    )
    (folder / "plumed.dat").write_text(
        "metad: METAD ARG=cv.n_crystal\nPRINT ARG=cv.n_crystal,metad.bias STRIDE=100 FILE=COLVAR\n"
    )
    key = {"system": "lj", "cells": 4, "temp": 0.58, "q6_cutoff": 1.5, "dump_every": 500}
    at = 500 * (len(n_series) - 3) if crystallised else None
    (folder / "result.json").write_text(json.dumps({"key": key, "crystallised_at": at}))


def test_fes_command_end_to_end(tmp_path: Path):
    """Two synthetic runs through `latentcv fes`: it writes fes.md/json/png; every frame's
    n is freud's largest solid cluster; the profile equals the reweighted histogram."""
    from latentcv.cv_models.analysis.crystallinity import freud_largest_cluster
    from latentcv.cv_models.data import read_lammps_dump

    series = [0, 0, 2, 0, 5, 10, 30, 60, 100, 160, 200, 230, 250, 256, 256]
    bias = np.linspace(0.0, 3.0, len(series))
    for seed in (1, 2):  # the same frames twice: the mean is each run's profile
        _write_run(tmp_path / "runs" / f"latent-seed{seed}", series, bias, 7)
    done = subprocess.run(
        [sys.executable, "-m", "latentcv.cv_models.app.cli", "fes", str(tmp_path), "--bin-width", "20"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "fes-latent"
    report = json.loads((out / "fes.json").read_text())
    assert (out / "fes.png").stat().st_size > 1000 and "ΔG*" in (out / "fes.md").read_text()
    frames = read_lammps_dump(tmp_path / "runs" / "latent-seed1" / "traj.dump", units="lj")
    n = np.array([freud_largest_cluster(f, 1.5) for f in frames], dtype=float)
    assert n[-1] > 200 and n[0] < 10
    hills = fes.Hills.read(tmp_path / "runs" / "latent-seed1" / "HILLS")
    ct = fes.tiwary_ct(hills, np.arange(len(series)) * 2.5, 0.58)
    edges = np.arange(-0.5, n.max() + 20, 20)
    f = fes.free_energy(n, (bias - ct) / 0.58, edges, 1.0)
    mean = np.array(report["f_mean_kt"], dtype=float)
    both = np.isfinite(mean) & np.isfinite(f)
    assert both.sum() >= 5
    np.testing.assert_allclose(mean[both] - mean[both][0], f[both] - f[both][0], atol=1e-9)
    assert report["per_run"][0]["frames"] == len(series)


def test_fes_gives_no_barrier_when_no_run_crystallised(tmp_path: Path):
    """Runs whose bias never froze the box: the top of their F(n) is where the sampling
    ended, so the report gives no n*, ΔG*, CNT fit or rate, and says why."""
    from latentcv.cv_models.app.nucleation_report import NOT_CROSSED, write_report

    series = [0, 0, 2, 0, 5, 10, 30, 20, 10, 5, 2]  # an embryo that grew and melted again
    bias = np.linspace(0.0, 3.0, len(series))
    for seed in (1, 2):
        _write_run(tmp_path / "runs" / f"latent-seed{seed}", series, bias, seed, crystallised=False)
    text = write_report(tmp_path, bin_width=5)
    report = json.loads((tmp_path / "fes-latent" / "fes.json").read_text())
    assert math.isnan(report["n_star"]) and math.isnan(report["dg_star_kt"])
    assert report["cnt"] == {"error": NOT_CROSSED} and not report["rate"]
    assert "never" in text and "Mean profile" not in text and NOT_CROSSED in text
    assert all(np.isfinite(r["dg_star_kt"]) for r in report["per_run"])  # each run's top, in parentheses
    assert all(r["filled_kt"] > 0 for r in report["per_run"])  # what the bias filled without crossing
    assert all(f"({r['n_star']:.0f}) | ({r['dg_star_kt']:.1f})" in text for r in report["per_run"])


def _two_rod_layers(gap: float) -> "Frame":  # noqa: F821
    """32 aligned 3-atom rods along z: two 4 × 4 square layers (centres 1.1 σ apart in a
    layer), ``gap`` σ apart, in an otherwise empty 20 σ box."""
    from latentcv.cv_models.data.frames import Frame

    grid = np.array([(1.1 * i, 1.1 * j) for i in range(4) for j in range(4)])
    centres = np.concatenate([np.c_[grid, np.full(16, 5.0)], np.c_[grid, np.full(16, 5.0 + gap)]]) + [5.0, 5.0, 0.0]
    atoms = (centres[:, None, :] + np.array([[0, 0, -0.5], [0, 0, 0], [0, 0, 0.5]])[None]).reshape(-1, 3)
    return Frame(atoms, 20.0 * np.eye(3), np.repeat(np.arange(32), 3), np.zeros(96, dtype=np.int64))


def test_fes_joins_the_trimer_layers_of_a_nucleus_within_the_systems_cluster_link(tmp_path: Path):
    """The trimers' rod layers are 1.9–2.0 σ apart: the judge's 1.5 σ cutoff splits a
    nucleus into its layers; ``fes`` joins them within the system's ``cluster_link``."""
    from latentcv.cv_models.analysis.crystallinity import largest_crystalline_cluster
    from latentcv.cv_models.app.nucleation_report import largest_cluster_sizes
    from latentcv.cv_models.data.writers import write_lammps_dump
    from latentcv.cv_models.system_file import metad_system

    frame = _two_rod_layers(gap=2.0)
    target = metad_system("trimers", cells=4)
    assert largest_crystalline_cluster(frame, "local_p2", target.judge_cutoff) == 16
    assert target.cluster_link == pytest.approx(2.1)
    write_lammps_dump(tmp_path / "traj.dump", [frame, _two_rod_layers(gap=3.0)])
    _, sizes, _ = largest_cluster_sizes(tmp_path / "traj.dump", target, target.judge_cutoff)
    assert sizes.tolist() == [32.0, 16.0]  # layers 2.0 σ apart join; 3.0 σ apart do not
