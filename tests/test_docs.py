"""Docs that cannot drift: every project file, Python name and ``latentcv`` command that
README.md and docs/*.md name exists, and every ``latentcv`` subcommand is documented."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from latentcv.cv_models.app import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = (
    "cv_models/",
    "export/",
    "cpp/",
    "plumed_plugin/",
    "lammps_plugin/",
    "tests/",
    "benchmarks/",
    "tools/",
    "examples/",
    "docs/",
    ".ci/",
)
CODE = re.compile(r"`([^`\n]+)`")


def _spans(doc: Path) -> list[str]:
    return CODE.findall(doc.read_text())


def _paths(doc: Path) -> list[str]:
    """Backticked project paths (the first word of a span), without placeholders or globs."""
    out = []
    for span in _spans(doc):
        if not span.split():
            continue
        word = span.split()[0].rstrip(".,;:)")
        word = re.sub(r"(\.py|\.cpp|\.h|\.md|\.sh|\.lmp|\.toml|\.txt):\S*$", r"\1", word)  # file.py:func
        if word.startswith(TOP) and not re.search(r"[<>*{}\[\]|…]", word) and not _a_build_product(doc, span):
            out.append(word)
    return out


def _a_build_product(doc: Path, span: str) -> bool:
    """A path inside the build folder (named as such in the sentence), not in the source tree."""
    text = doc.read_text()
    i = text.find(f"`{span}`")
    return "build folder" in text[max(0, i - 80) : i]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_project_path_the_docs_name_exists(doc):
    missing = sorted({p for p in _paths(doc) if not (ROOT / p.split("::")[0]).exists()})
    assert not missing, f"{doc.name} names files that do not exist: {missing}"


def _dotted_names(doc: Path) -> list[str]:
    names = []
    for span in _spans(doc):
        m = re.fullmatch(r"(latentcv(?:\.\w+)+)(?:\(.*\))?", span.strip())
        if m:
            names.append(m.group(1))
    return names


def _resolves(dotted: str) -> bool:
    """``latentcv.a.b.c``: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


NOT_NAMES = {"latentcv.model"}  # architecture.md: the package name latentcv does *not* use, and why


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_python_name_the_docs_give_resolves(doc):
    bad = sorted({n for n in _dotted_names(doc) if not _resolves(n)} - NOT_NAMES)
    assert not bad, f"{doc.name} names Python objects that do not exist: {bad}"


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(action.choices)


def _command_text(doc: Path) -> str:
    """The code of a doc: backticked spans and fenced blocks (not the prose)."""
    text = doc.read_text()
    fenced = re.findall(r"```[^\n]*\n(.*?)```", text, re.S)
    return "\n".join(fenced + _spans(doc))


def test_every_latentcv_command_the_docs_use_exists():
    commands = _subcommands()
    used = {
        (doc.name, m)
        for doc in DOCS
        for m in re.findall(r"(?:^|\s|/)(?<!from )latentcv ([a-z][a-z-]+)", _command_text(doc), re.M)
    }
    unknown = sorted((name, c) for name, c in used if c not in commands)
    assert not unknown, f"docs use latentcv subcommands that do not exist: {unknown}"


def test_every_subcommand_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    undocumented = sorted(c for c in _subcommands() if f"latentcv {c}" not in readme)
    assert not undocumented, f"README.md does not mention: {undocumented}"
