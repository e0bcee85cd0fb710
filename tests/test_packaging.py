"""The repository root is the package ``mer``: every sub-package must be listed in pyproject.toml,
or a wheel would silently miss it."""

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
SKIP = {"tests", "benchmarks", ".venv", "build", "runs", ".mer-home", ".git"}


def test_every_subpackage_is_listed():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"mer"}
    for init in REPO.rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts and (rel.parts[0] in SKIP or rel.parts[0].startswith(".")):
            continue
        if rel.parts:
            found.add("mer." + ".".join(rel.parts))
    assert found == listed


def test_import_names_live_under_mer():
    import mer.protocols.runner as runner

    assert runner.__name__ == "mer.protocols.runner"
    assert Path(runner.__file__).resolve().parent == REPO / "protocols"
