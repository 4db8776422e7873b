"""The C++ core's own unit tests (cpp/tests: the neighbour list against brute force, metadata
parsing, evaluation against a formula and finite differences), run by ctest in the CMake
build folder that `make build` fills: so `make test` runs them. Under a second.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITES = ("neighbor_list", "model_info", "evaluation")


def build_folder() -> Path:
    """pyproject.toml's build-dir, build/{wheel_tag}, of this interpreter."""
    version = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    folder = ROOT / "build" / f"{version}-{version}-{platform}"
    if not (folder / "cpp" / "CTestTestfile.cmake").is_file():
        pytest.fail(
            f"no C++ build with the core's tests in {folder}: run `make build` (a missing build is a failure "
            "here, not a skip: `make test` builds first)"
        )
    return folder


@pytest.mark.parametrize("suite", SUITES)
def test_cpp_core_unit_tests(suite):
    ctest = Path(sys.prefix) / "bin" / "ctest"  # from the cmake wheel the build uses
    result = subprocess.run(
        [str(ctest), "--test-dir", str(build_folder()), "--output-on-failure", "-R", rf"^core\.{suite}$"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "100% tests passed out of 1" in result.stdout, result.stdout  # the suite ran (a -R typo runs none)
