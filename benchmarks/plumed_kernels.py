"""PLUMED's own CVs in the bundled (unoptimised) and the `make plumed-opt` (-O3) kernel.

LAMMPS LJ (the setup of chain_overhead.py), ms/step side by side in one invocation:
plain MD; the bare bridge (a DISTANCE between two atoms + RESTRAINT: what `fix plumed`
and PLUMED cost with almost no CV work) and Q6 VMEAN + RESTRAINT over all atoms, each in
both kernels. Every measurement runs in a fresh process (two kernels in one process would
share the soname libplumedKernel.so). The machine is shared and noisy: compare ratios.

    .venv/bin/python benchmarks/plumed_kernels.py [--sizes 256 2048] [--steps 200]
        [--q6-bundled-steps 20] [--q6-optimised-steps 100]

Q6 step counts are for 256 atoms and scale as 256/N (at least 3): Q6 in the bundled
kernel costs ~0.15 s/step at 256 atoms. Needs `make plumed-opt` (else only the bundled
rows are measured).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from latentcv.cv_models.native import paths

Q6 = (
    "q6: Q6 SPECIES=1-{n} SWITCH={{RATIONAL D_0=1.3 R_0=0.2 D_MAX=1.5}} VMEAN\nRESTRAINT ARG=q6_vmean AT=0.3 KAPPA=10\n"
)
BRIDGE = "d: DISTANCE ATOMS=1,2\nRESTRAINT ARG=d AT=1.2 KAPPA=10\n"


def measure(cells: int, steps: int, dat: Path | None, kernel: str | None) -> float:
    """ms/step of one variant, in a fresh Python process (see --one)."""
    cmd = [sys.executable, __file__, "--one", str(cells), str(steps), str(dat or "-"), kernel or "-"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def one(argv: list[str]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from chain_overhead import ms_per_step

    cells, steps, dat, kernel = int(argv[0]), int(argv[1]), argv[2], argv[3]
    plumed_dat = None if dat == "-" else Path(dat)
    print(ms_per_step(cells, steps, plumed_dat, None if kernel == "-" else kernel, warmup=min(20, steps // 4 + 1)))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        return one(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048], help="atom counts (4·cells³)")
    parser.add_argument("--steps", type=int, default=200, help="steps for plain MD and the bridge")
    parser.add_argument("--q6-bundled-steps", type=int, default=20, help="Q6 steps, bundled kernel, at 256 atoms")
    parser.add_argument("--q6-optimised-steps", type=int, default=100, help="Q6 steps, -O3 kernel, at 256 atoms")
    args = parser.parse_args()

    kernels = {"bundled": "bundled"}
    try:
        kernels["optimised (-O3)"] = str(paths.optimised_plumed_kernel())
    except paths.MissingNativeFile as exc:
        print(f"note: {exc} Measuring the bundled kernel only.", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="latentcv-kernels-"))
    rows = []
    for natoms in args.sizes:
        cells = round((natoms / 4) ** (1 / 3))
        n = 4 * cells**3
        q6_scale = 256 / n
        variants = [("plain MD", None, None, args.steps)]
        for kname, kernel in kernels.items():
            variants.append(("bridge: DISTANCE + RESTRAINT", BRIDGE, (kname, kernel), args.steps))
        for kname, kernel in kernels.items():
            base_steps = args.q6_bundled_steps if kernel == "bundled" else args.q6_optimised_steps
            variants.append(
                ("Q6 VMEAN + RESTRAINT", Q6.format(n=n), (kname, kernel), max(3, round(base_steps * q6_scale)))
            )
        plain = None
        for name, body, kernel, steps in variants:
            dat = None
            if body is not None:
                dat = tmp / f"{n}_{len(rows)}.dat"
                dat.write_text(body)
            t = measure(cells, steps, dat, kernel[1] if kernel else None)
            plain = t if plain is None else plain
            rows.append((n, name, kernel[0] if kernel else "-", steps, t, t / plain, t - plain))
            print(f"  measured {n} atoms, {name}, {rows[-1][2]}: {t:.3f} ms/step", file=sys.stderr, flush=True)

    w = max(len(r[1]) for r in rows)
    k = max(len(r[2]) for r in rows)
    print(f"| atoms | variant{' ' * (w - 7)} | kernel{' ' * (k - 6)} | steps | ms/step | × plain MD | PLUMED ms/step |")
    print("|---:|:---|:---|---:|---:|---:|---:|")
    for n, name, kname, steps, t, ratio, extra in rows:
        extra_s = "" if name == "plain MD" else f"{extra:.3f}"
        print(f"| {n} | {name:{w}s} | {kname:{k}s} | {steps} | {t:.3f} | {ratio:.2f} | {extra_s} |")
    for n in args.sizes:
        n = 4 * round((n / 4) ** (1 / 3)) ** 3
        q6 = {r[2]: r[6] for r in rows if r[0] == n and r[1].startswith("Q6")}
        if len(q6) == 2:
            b, o = q6["bundled"], q6["optimised (-O3)"]
            print(f"{n} atoms: Q6's PLUMED time, bundled / optimised = {b / o:.1f}x")


if __name__ == "__main__":
    main()
