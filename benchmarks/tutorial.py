"""Run a tutorial page as written (benchmark, not a test: minutes on one core).

Extracts the page's fenced blocks in order: ``toml`` blocks whose first line is
``# file: PATH`` are written to PATH; ``bash`` blocks are run, all in one bash session
(``set -euo pipefail``) from the checkout's root, so ``cd`` and ``source`` carry over.

    .venv/bin/python benchmarks/tutorial.py [PAGE] [--clean]
    .venv/bin/python benchmarks/tutorial.py                          # docs/tutorial.md (trimers)
    .venv/bin/python benchmarks/tutorial.py docs/tutorial-ice.md     # mW ice

Each page writes into its own folder, named after it (docs/tutorial.md: tutorial_out,
docs/tutorial-ice.md: tutorial_ice_out); ``--clean`` deletes that folder first. Exit
status 0 when every command of the page ran; prints the commands as they run, and the
wall time at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def script(page: Path) -> str:
    """The tutorial as one bash script: its bash blocks, and heredocs for its files."""
    parts = ["set -euo pipefail", "set -x"]
    for lang, body in BLOCK.findall(page.read_text()):
        if lang == "bash":
            parts.append(body)
        elif lang == "toml" and body.startswith("# file: "):
            first, rest = body.split("\n", 1)
            target = first[len("# file: ") :].strip()
            parts.append(
                f"mkdir -p $(dirname {target}) && cat > {target} <<'LATENTCV_TUTORIAL_EOF'\n{rest}LATENTCV_TUTORIAL_EOF"
            )
    return "\n".join(parts) + "\n"


def output_dir(page: Path) -> Path:
    """The folder a page writes into: its name with - as _, plus _out (tutorial-ice.md: tutorial_ice_out)."""
    return ROOT / (page.stem.replace("-", "_") + "_out")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page", nargs="?", default=str(ROOT / "docs" / "tutorial.md"), help="the page (docs/tutorial.md)")
    p.add_argument("--clean", action="store_true", help="delete the page's output folder first")
    a = p.parse_args()
    page = Path(a.page).resolve()
    if not page.is_file():
        p.error(f"{a.page}: no such page")
    out = output_dir(page)
    if out.name not in page.read_text():
        p.error(f"{a.page} does not write into {out.name}/, the folder --clean would delete")
    if a.clean:
        shutil.rmtree(out, ignore_errors=True)
    began = time.perf_counter()
    rc = subprocess.call(["bash", "-c", script(page)], cwd=ROOT)
    print(f"{page.name}: exit {rc}, {time.perf_counter() - began:.0f} s wall", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
