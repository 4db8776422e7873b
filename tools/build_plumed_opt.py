"""`make plumed-opt`: build an optimised (-O3) PLUMED kernel, same source as the bundled one.

The PLUMED kernel of PyPI ``hillclimber==0.1.8`` is compiled without optimisation (its
build hook passes ``CXXFLAGS=-Wno-error`` to PLUMED's configure, which replaces the
default ``-O3``), so PLUMED's own CVs (Q6, COORDINATION, ...) run ~10x slower than they
should. This script rebuilds the *same* PLUMED (the hillclimber sdist carries the full
source in ``external/plumed2``) with ``CXXFLAGS=-O3`` and installs it under a prefix in
the venv (default ``.venv/opt/plumed-O3``). See docs/install.md.

Steps, all logged to ``<prefix>.build.log``:

1. the sdist ``hillclimber-0.1.8.tar.gz``: ``--sdist PATH`` (or ``$HILLCLIMBER_SDIST``) if
   given, else downloaded from the package index that pip is configured with. Not with
   ``pip download``: hillclimber's build backend (hatchling) offers pip no metadata hook,
   so ``pip download`` of the sdist compiles the whole (unoptimised) PLUMED just to read
   its metadata. pip's own index client finds the file instead; its sha256 is checked
   against the pin below either way.
2. ``external/plumed2`` extracted to ``<prefix>.src`` (replaced if present);
3. ``./configure --enable-modules=all --disable-doc --disable-python CXXFLAGS=-O3`` with
   the mpich wheel's ``mpicxx``/``mpicc`` when the venv has them (MPI-enabled kernel), else
   with the system compilers (no MPI);
4. ``make -jN`` with a progress line every 30 s, then ``make install python_bin=`` (no
   Python bindings); a tree whose ``make`` finished is reused if only the install failed;
5. a smoke check: ``plumed --no-mpi info --long-version``.

    .venv/bin/python tools/build_plumed_opt.py --prefix .venv/opt/plumed-O3 [--jobs 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

SDIST_NAME = "hillclimber"
SDIST_VERSION = "0.1.8"
SDIST_FILE = f"{SDIST_NAME}-{SDIST_VERSION}.tar.gz"
SDIST_SHA256 = "795022caa8954149877bcb812a1ec14eb013c67a92abf0d318c2a603dc0b5f22"
PLUMED_SUBDIR = "external/plumed2"


class BuildError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"[plumed-opt] {msg}", flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_sdist(dest: Path) -> None:
    """Fetch the sdist with pip's index client (pip's configured indexes, proxy, certs)."""
    from pip._internal.commands import create_command
    from pip._vendor.packaging.specifiers import SpecifierSet

    cmd = create_command("download")
    options, _ = cmd.parse_args(["--no-deps", "--no-binary", SDIST_NAME, f"{SDIST_NAME}=={SDIST_VERSION}"])
    with cmd.main_context():
        session = cmd.get_default_session(options)
        finder = cmd._build_package_finder(options=options, session=session)
        best = finder.find_best_candidate(SDIST_NAME, SpecifierSet(f"=={SDIST_VERSION}")).best_candidate
        if best is None or not best.link.filename.endswith(".tar.gz"):
            raise BuildError(f"the package index has no sdist of {SDIST_NAME}=={SDIST_VERSION}")
        url = best.link.url_without_fragment
        say(f"downloading {url}")
        partial = dest.with_suffix(".part")
        with session.get(url, stream=True) as response:
            response.raise_for_status()
            with open(partial, "wb") as f:
                for block in response.iter_content(1 << 20):
                    f.write(block)
        partial.rename(dest)


def obtain_sdist(given: str | None, cache_dir: Path) -> Path:
    if given:
        path = Path(given)
        if not path.is_file():
            raise BuildError(f"--sdist {path}: no such file")
    else:
        cache_dir.mkdir(parents=True, exist_ok=True)
        path = cache_dir / SDIST_FILE
        if not path.is_file():
            try:
                download_sdist(path)
            except BuildError:
                raise
            except Exception as exc:  # pip internals moved, no network, ...
                raise BuildError(
                    f"could not download {SDIST_FILE} ({type(exc).__name__}: {exc}). Fetch it by hand "
                    f"and pass it: make plumed-opt HILLCLIMBER_SDIST=/path/to/{SDIST_FILE}"
                ) from exc
    digest = sha256(path)
    if digest != SDIST_SHA256:
        raise BuildError(f"{path}: sha256 {digest}, expected {SDIST_SHA256} ({SDIST_FILE})")
    say(f"sdist {path} (sha256 ok)")
    return path


def extract_plumed(sdist: Path, src: Path) -> None:
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    prefix = f"{SDIST_NAME}-{SDIST_VERSION}/{PLUMED_SUBDIR}/"
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            if m.name.startswith(prefix) and len(m.name) > len(prefix):
                m.name = m.name[len(prefix) :]
                members.append(m)
        if not members:
            raise BuildError(f"{sdist} has no {PLUMED_SUBDIR}")
        tar.extractall(src, members=members, filter="tar")
    if not (src / "configure").is_file():
        raise BuildError(f"{src}: no PLUMED configure script after extraction")
    say(f"PLUMED {(src / 'VERSION.txt').read_text().split()[-1]} source in {src}")


def run_logged(cmd: list[str], cwd: Path, log, env: dict[str, str], progress=None) -> None:
    log.write(f"\n$ {' '.join(cmd)}  (in {cwd})\n")
    log.flush()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    done = threading.Event()

    def report():
        while not done.wait(30):
            extra = f", {progress()}" if progress else ""
            say(f"  {cmd[0]} {' '.join(cmd[1:2])}: {time.monotonic() - start:.0f} s{extra}")

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        rc = proc.wait()
    finally:
        done.set()
    if rc != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed (exit {rc}); see {log.name}")


def compilers(venv_bin: Path) -> tuple[dict[str, str], bool]:
    mpicxx, mpicc = venv_bin / "mpicxx", venv_bin / "mpicc"
    if mpicxx.is_file() and mpicc.is_file():
        return {"CXX": str(mpicxx), "CC": str(mpicc)}, True
    return {"CXX": shutil.which("g++") or "c++", "CC": shutil.which("gcc") or "cc"}, False


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefix", required=True, help="install prefix, e.g. .venv/opt/plumed-O3")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--sdist",
        default=os.environ.get("HILLCLIMBER_SDIST") or None,
        help=f"a local {SDIST_FILE} (default: download it)",
    )
    parser.add_argument("--no-mpi", action="store_true", help="build without MPI even if mpicxx is there")
    parser.add_argument("--keep-source", action="store_true", help="keep the build tree <prefix>.src")
    return parser.parse_args()


def configure_line(prefix: Path, cc: dict[str, str], mpi: bool) -> list[str]:
    """PLUMED's ./configure command: all modules, -O3, shared kernel with its rpath."""
    return [
        "./configure",
        f"--prefix={prefix}",
        "--enable-modules=all",
        "--enable-shared",
        "--disable-static-archive",
        "--disable-doc",
        "--disable-python",
        "--disable-dependency-tracking",
        f"--{'enable' if mpi else 'disable'}-mpi",
        f"CXX={cc['CXX']}",
        f"CC={cc['CC']}",
        "CXXFLAGS=-O3",
        f"LDFLAGS=-Wl,-rpath,{prefix / 'lib'}",
    ]


def build(
    args: argparse.Namespace,
    prefix: Path,
    src: Path,
    configure: list[str],
    mpi: bool,
    cxx: str,
    log,
    env: dict[str, str],
) -> None:
    """Steps 1-4 up to ``make``: reuse a tree whose ``make`` finished with the same
    configure line (an install that failed or was interrupted), else extract and build."""
    built_marker = src / ".latentcv-built"
    if built_marker.is_file() and built_marker.read_text() == " ".join(configure):
        say(f"reusing the finished build in {src}")
        return
    sdist = obtain_sdist(args.sdist, prefix.parent / "downloads")
    extract_plumed(sdist, src)
    say(f"configure ({'MPI via the mpich wheel' if mpi else 'no MPI'}, -O3, all modules)")
    run_logged(configure, src, log, env)
    config = (src / "Makefile.conf").read_text()
    if mpi and "-D__PLUMED_HAS_MPI" not in config:
        raise BuildError(f"configure did not enable MPI with {cxx}; see {log.name}")

    n_sources = sum(1 for _ in (src / "src").rglob("*.cpp"))

    def progress() -> str:
        n_obj = sum(1 for _ in (src / "src").rglob("*.o"))
        return f"{n_obj} objects (~{n_sources} sources)"

    say(f"make -j{args.jobs} (10-50 min on 2 cores, depending on load; progress every 30 s)")
    run_logged(["make", f"-j{args.jobs}"], src, log, env, progress)
    built_marker.write_text(" ".join(configure))


def install_and_check(prefix: Path, src: Path, log, env: dict[str, str]) -> tuple[Path, str]:
    """Step 4's ``make install`` into a clean prefix and step 5's smoke check; returns
    the kernel library and PLUMED's version."""
    say("make install")
    if prefix.exists():
        shutil.rmtree(prefix)
    # python_bin= : --disable-python does not stop `make install` from building
    # PLUMED's Python bindings (configure keeps python_bin for the pycv module);
    # they need Cython and are not used here
    run_logged(["make", "install", "python_bin="], src, log, env)
    kernel = prefix / "lib" / "libplumedKernel.so"
    if not kernel.is_file():
        raise BuildError(f"make install produced no {kernel}")
    check_env = dict(
        env,
        PLUMED_KERNEL=str(kernel),
        LD_LIBRARY_PATH=os.pathsep.join(p for p in (str(prefix / "lib"), env.get("LD_LIBRARY_PATH", "")) if p),
    )
    version = subprocess.run(
        [str(prefix / "bin" / "plumed"), "--no-mpi", "info", "--long-version"],
        env=check_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log.write(version.stdout + version.stderr)
    if version.returncode != 0:
        raise BuildError(f"{prefix}/bin/plumed does not run; see {log.name}")
    return kernel, version.stdout.strip()


def main() -> int:
    args = parse_args()
    prefix = Path(args.prefix).absolute()
    src = prefix.with_name(prefix.name + ".src")
    log_path = prefix.with_name(prefix.name + ".build.log")
    venv_bin = Path(sys.executable).parent
    prefix.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        with open(log_path, "a") as log:  # appended: a reused build keeps its make log
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)}\n")
            say(f"log: {log_path}")
            cc, mpi = compilers(Path("/nonexistent") if args.no_mpi else venv_bin)
            env = dict(os.environ)
            env["PATH"] = os.pathsep.join([str(venv_bin), env.get("PATH", "")])
            configure = configure_line(prefix, cc, mpi)
            build(args, prefix, src, configure, mpi, cc["CXX"], log, env)
            kernel, version = install_and_check(prefix, src, log, env)
            if not args.keep_source:
                shutil.rmtree(src)
    except BuildError as exc:
        say(f"FAILED: {exc}")
        return 1
    say(
        f"done in {(time.monotonic() - t0) / 60:.1f} min: PLUMED {version} "
        f"({'with' if mpi else 'without'} MPI), kernel {kernel}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
