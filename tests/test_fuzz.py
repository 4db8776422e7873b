"""Fuzz, bounded in time: random LATENT_CV lines and corrupted model files through
`plumed driver`, random `fix plumed` arguments through LAMMPS. Every case must end with
a normal exit or an error message: no segfault, no hang. (`plumed driver` itself ends
every input error with an uncaught PLUMED exception, i.e. SIGABRT after printing
"ERROR in input ..."; that is its error exit, accepted only as such.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from chain_helpers import ORTHORHOMBIC, random_frame, run_plumed_driver
from latentcv.cv_models.native import paths
from tests.lammps_scaffold import lj_system

N_ATOMS = 24
CASES = 80  # LATENT_CV lines; about 0.2 s each


@pytest.fixture(scope="module")
def lj_model(coordination_model):
    return coordination_model(atoms_per_molecule=2, cutoff=1.5, length_unit="lj")


def _assert_clean_exit(proc: subprocess.CompletedProcess, what: str) -> None:
    """0, an error exit, or PLUMED driver's abort on an uncaught PLUMED exception (an input
    error or one of PLUMED's own checks, message printed)."""
    out = proc.stdout + proc.stderr
    if proc.returncode == -signal.SIGABRT:
        assert "throwing an instance of 'PLMD::Plumed::Exception" in out, f"abort on {what}\n{out[-1500:]}"
    else:
        assert proc.returncode >= 0, f"signal {-proc.returncode} on {what}\n{out[-1500:]}"


def _value(rng: np.random.Generator) -> str:
    pool = [
        "0",
        "-1",
        "1",
        "2",
        "7",
        "1e6",
        "-1e6",
        "nan",
        "inf",
        "-inf",
        "1.5",
        "0.0001",
        "abc",
        "",
        ",",
        "1-3",
        "3-1",
        "1-100000",
        "-5",
        "1e308",
        "2147483648",
        "cuda:99",
        "cpu",
        "auto",
        "cuda",
        "ÿ",
    ]
    return str(rng.choice(pool))


def _random_line(rng: np.random.Generator, models: list[str]) -> str:
    words = ["cv:", "LATENT_CV"]
    if rng.random() < 0.9:
        words.append(f"MODEL={rng.choice(models)}")
    if rng.random() < 0.85:
        atoms = rng.choice(
            [
                f"1-{N_ATOMS}",
                f"1-{N_ATOMS - 1}",
                f"1-{N_ATOMS},1-2",
                "1-3",
                f"{N_ATOMS}-1",
                "1,2,3,4",
                f"1-{N_ATOMS + 10}",
                _value(rng),
            ]
        )
        words.append(f"ATOMS={atoms}")
    for key in ("DEVICE", "THREADS", "SKIN", "NOSUCHKEY"):
        if rng.random() < 0.35:
            words.append(f"{key}={_value(rng)}")
    if rng.random() < 0.3:
        words.append("FULL_DERIVATIVES")
    if rng.random() < 0.15:
        words.insert(int(rng.integers(1, len(words) + 1)), _value(rng) or "{")
    return " ".join(words)


def test_random_latent_cv_lines_never_crash(tmp_path, lj_model):
    rng = np.random.default_rng(20261202)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(rng.bytes(4096))
    models = [str(lj_model)] * 3 + [str(junk), str(tmp_path / "missing.pt"), str(tmp_path)]
    frames = [(random_frame(N_ATOMS, ORTHORHOMBIC, seed=1), ORTHORHOMBIC)]
    outcomes = {"ok": 0, "error": 0}
    for k in range(CASES):
        line = _random_line(rng, models)
        d = tmp_path / f"case{k}"
        d.mkdir()
        dat = f"UNITS NATURAL\nLOAD FILE={paths.plumed_plugin_path()}\n{line}\nPRINT ARG=cv.* FILE=COLVAR\n"
        proc = run_plumed_driver(d, dat, frames)  # raises TimeoutExpired on a hang
        _assert_clean_exit(proc, line)
        outcomes["ok" if proc.returncode == 0 else "error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes  # the fuzz reached both sides


def test_corrupted_model_files_never_crash(tmp_path, lj_model):
    rng = np.random.default_rng(7)
    good = lj_model.read_bytes()
    frames = [(random_frame(N_ATOMS, ORTHORHOMBIC, seed=2), ORTHORHOMBIC)]
    variants = [good[: len(good) // 2], good[:100], b"", good[::-1]]
    for _ in range(6):  # flipped bytes at random places
        b = bytearray(good)
        for i in rng.integers(0, len(b), 20):
            b[i] = int(rng.integers(0, 256))
        variants.append(bytes(b))
    for k, data in enumerate(variants):
        d = tmp_path / f"v{k}"
        d.mkdir()
        (d / "m.pt").write_bytes(data)
        dat = (
            f"UNITS NATURAL\nLOAD FILE={paths.plumed_plugin_path()}\n"
            f"cv: LATENT_CV MODEL={d / 'm.pt'} ATOMS=1-{N_ATOMS}\nPRINT ARG=cv.* FILE=COLVAR\n"
        )
        proc = run_plumed_driver(d, dat, frames)
        _assert_clean_exit(proc, f"model variant {k}")
        assert proc.returncode != 0 or k >= 4, f"variant {k} (truncated or empty) was accepted"


FIX_FUZZ = textwrap.dedent("""
    import sys
    import numpy as np
    from latentcv.cv_models.engines import open_lammps
    rng = np.random.default_rng(11)
    dat, tmp, setup = sys.argv[1], sys.argv[2], sys.argv[3]
    words = ["plumedfile", dat, "outfile", tmp + "/log", "kernel", "bundled", "optimised", "nowhere.so",
             tmp, "", "x" * 300, "plumedfile", "outfile", "kernel", "1", "-1", "ÿ", "{", "}", "$x"]
    ok = errors = 0
    lmp = open_lammps(load_fix_plumed=True)
    lmp.commands_string(setup)
    for k in range(40):
        args = " ".join(str(w) for w in rng.choice(words, int(rng.integers(0, 7))))
        try:
            lmp.command(f"fix p{k} all plumed {args}")
            lmp.command("run 2")
            lmp.command(f"unfix p{k}")
            ok += 1
        except Exception:
            errors += 1
    lmp.close()
    print(f"FUZZ-DONE ok={ok} errors={errors}")
""")


def test_random_fix_plumed_arguments_never_crash(tmp_path):
    dat = tmp_path / "plumed.dat"
    dat.write_text("d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1.0 KAPPA=1\n")
    setup = lj_system(2, density=0.8442)
    proc = subprocess.run(
        [sys.executable, "-c", FIX_FUZZ, str(dat), str(tmp_path), setup],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
    assert "FUZZ-DONE" in proc.stdout
