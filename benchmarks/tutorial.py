"""Run docs/tutorial.md as written (benchmark, not a test: ~5 minutes on one core).

Extracts the page's fenced blocks in order: ``toml`` blocks whose first line is
``# file: PATH`` are written to PATH; ``bash`` blocks are run, all in one bash session
(``set -euo pipefail``) from the checkout's root, so ``cd`` and ``source`` carry over.

    .venv/bin/python benchmarks/tutorial.py [--clean]

Exit status 0 when every command of the tutorial ran; prints the commands as they run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--page", default=str(ROOT / "docs" / "tutorial.md"))
    p.add_argument("--clean", action="store_true", help="delete tutorial_out first")
    a = p.parse_args()
    if a.clean:
        shutil.rmtree(ROOT / "tutorial_out", ignore_errors=True)
    return subprocess.call(["bash", "-c", script(Path(a.page))], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
