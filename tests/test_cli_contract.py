"""What a script can rely on from ``mer``: exit codes per error kind, bug reports, --version, -h."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomllib
from typer.testing import CliRunner

from mer import errors
from mer.cli import app

REPO = Path(__file__).resolve().parents[1]


def _raise_in_stats(monkeypatch, exc: BaseException) -> None:
    """Make ``mer data stats`` raise ``exc`` from inside the library call it makes."""

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr("mer.protocols.stats.stats_report", boom)


def _stats(*extra: str):
    return CliRunner().invoke(app, [*extra, "data", "stats", "synthme", "--annotations", "x.csv"])


def _kinds():
    from mer.merclip.text import MissingWeightsError
    from mer.protocols.layouts import FrameError
    from mer.protocols.runner import RunConfigError
    from mer.protocols.sample import AnnotationError
    from mer.registry import RegistryError
    from mer.zoo.api import UnknownOptionError
    from mer.zoo.artifact import IntegrityError
    from mer.zoo.hub import HubError, NotCachedError
    from mer.zoo.train import NonFiniteLossError

    return [
        (RegistryError("unknown model 'x'"), 2),
        (UnknownOptionError("m: unknown option(s) bogus"), 2),
        (RunConfigError("different configuration"), 2),
        (errors.OptionValueError("--folds: fold(s) [9] outside 0..2"), 2),
        (AnnotationError("row 4: bad"), 3),
        (FrameError("no frames in /x"), 3),
        (errors.MissingInputError("dataset root not found: /x"), 3),
        (IntegrityError("weights sha256 differs"), 4),
        (HubError("offline"), 5),
        (NotCachedError("not in the cache"), 5),
        (MissingWeightsError("CLIP weights not cached"), 5),
        (NonFiniteLossError("non-finite loss (nan)"), 6),
    ]


@pytest.mark.parametrize("case", range(12))
def test_each_error_kind_has_its_exit_code_and_one_line(monkeypatch, case):
    exc, code = _kinds()[case]
    assert errors.ExitCode(code) == exc.exit_code
    _raise_in_stats(monkeypatch, exc)
    r = _stats()
    assert r.exit_code == code, r.output
    assert r.output.strip() == f"error: {exc}"  # one line, no traceback
    assert "Traceback" not in r.output


def test_library_errors_keep_their_builtin_base():
    """``except ValueError`` / ``except FileNotFoundError`` written before the kinds still catch them."""
    from mer.protocols.layouts import FrameError
    from mer.protocols.sample import AnnotationError
    from mer.registry import RegistryError
    from mer.zoo.hub import NotCachedError
    from mer.zoo.train import NonFiniteLossError

    assert issubclass(AnnotationError, ValueError) and issubclass(FrameError, FileNotFoundError)
    assert issubclass(RegistryError, KeyError) and issubclass(NotCachedError, FileNotFoundError)
    assert issubclass(NonFiniteLossError, RuntimeError)
    assert issubclass(errors.MissingInputError, FileNotFoundError)
    assert issubclass(errors.NonFiniteError, FloatingPointError)


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), ValueError("a bug's ValueError")])
def test_anything_else_is_reported_as_a_bug_with_its_traceback_file(monkeypatch, exc):
    _raise_in_stats(monkeypatch, exc)
    r = _stats()
    assert r.exit_code == 1
    assert f"unexpected {type(exc).__name__}: {exc}" in r.output and "bug in mer" in r.output
    assert "Traceback" not in r.output  # not printed without --debug ...
    logs = list((Path(os.environ["MER_HOME"]) / "logs").glob("bug-*.txt"))
    assert len(logs) == 1 and str(logs[0]) in "".join(r.output.split())  # its path is printed
    text = logs[0].read_text()  # ... but saved, with the frame that raised
    assert "Traceback" in text and "in boom" in text and type(exc).__name__ in text


def test_debug_flag_and_env_print_the_traceback(monkeypatch):
    _raise_in_stats(monkeypatch, errors.OptionValueError("bad value"))
    r = _stats("--debug")
    assert r.exit_code == 2 and "Traceback" in r.output and "in boom" in r.output
    assert r.output.rstrip().endswith("error: bad value")
    monkeypatch.setenv("MER_DEBUG", "1")
    r = _stats()
    assert r.exit_code == 2 and "Traceback" in r.output
    _raise_in_stats(monkeypatch, KeyError("k"))
    r = _stats()
    assert r.exit_code == 1 and "Traceback" in r.output and "in boom" in r.output


def test_version_matches_the_package():
    import mer

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert r.output.strip() == f"mer {mer.__version__}" == f"mer {declared}"


@pytest.mark.parametrize(
    "args", [[], ["data"], ["bench", "run"], ["models", "list"], ["leaderboard", "build"]]
)
def test_dash_h_is_help_everywhere(args):
    short = CliRunner().invoke(app, [*args, "-h"])
    long = CliRunner().invoke(app, [*args, "--help"])
    assert short.exit_code == 0 and "Usage:" in short.output
    assert short.output == long.output


@pytest.mark.parametrize("group", ["models", "protocols", "data"])
def test_lists_in_a_pipe_are_plain_and_untruncated_and_take_json(group):
    import json

    from mer.registrations import load_all
    from mer.zoo.api import MODELS

    load_all()
    r = CliRunner().invoke(app, [group, "list"])  # CliRunner's stdout is not a terminal, as a pipe
    assert r.exit_code == 0, r.output
    assert "━" not in r.output and "…" not in r.output  # no rich box, nothing cut
    lines = r.output.splitlines()
    assert lines[0].split()[0] == "name"
    if group == "models":
        names = {line.split()[0] for line in lines[1:]}
        assert names == set(MODELS) and "merclip-no-progressive" in names
    records = json.loads(CliRunner().invoke(app, [group, "list", "--json"]).output)
    assert len(records) == len(lines) - 1 and all("name" in rec for rec in records)


def test_models_info_prints_the_option_schema():
    import json

    r = CliRunner().invoke(app, ["models", "info", "merclip", "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    options = {o["name"]: o for o in info["options"]}
    assert options["epochs"]["type"] == "int" and options["epochs"]["range"] == "1..100000"
    assert options["onset_relative"]["type"] == "bool" and info["sizes"] == ["base", "tiny"]
    text = CliRunner().invoke(app, ["models", "info", "lbptop-svm"]).output
    assert any(line.split()[:2] == ["grid", "int"] for line in text.splitlines())
    assert CliRunner().invoke(app, ["models", "info", "nosuch"]).exit_code == 2


def test_zoo_list_json_parses():
    import json

    r = CliRunner().invoke(app, ["zoo", "list", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert any(e["name"] == "clip-vit-b16" for e in data["catalogue"]) and isinstance(data["cached"], list)


def test_one_name_for_the_runs_folder_everywhere():
    import typer.main

    group = typer.main.get_command(app)
    seen = 0

    def walk(cmd, path):
        nonlocal seen
        for p in getattr(cmd, "params", []):
            if p.name == "runs_dir":
                seen += 1
                assert p.opts[0] == "--runs-dir", (path, p.opts)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(group, [])
    assert seen >= 8
    r = CliRunner().invoke(app, ["leaderboard", "show", "--runs", "nowhere"])  # the old name still works
    assert r.exit_code == 0, r.output


def test_env_reports_versions_and_devices():
    import json

    import torch

    import mer

    r = CliRunner().invoke(app, ["env", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["mer"] == mer.__version__ and report["packages"]["torch"] == torch.__version__.split("+")[0]
    assert report["devices"]["cpu_cores"] >= 1 and isinstance(report["devices"]["cuda"], list)
    assert report["paths"]["MER_HOME"] == os.environ["MER_HOME"]
    text = CliRunner().invoke(app, ["env"]).stdout
    assert any(line.split()[:2] == ["mer", mer.__version__] for line in text.splitlines())


def test_progress_of_synth_and_per_epoch_lines_of_a_fold(tmp_path):
    r = CliRunner().invoke(
        app, ["data", "synth", "--out", str(tmp_path / "s"), "--subjects", "3", "--clips-per-subject", "6"]
    )
    assert r.exit_code == 0, r.output
    assert "synth" in r.stderr and "18/18" in r.stderr
    run = [
        "bench", "run", "--model", "merclip", "--size", "tiny", "--protocol", "loso-synth-3", "--folds", "0",
        "--runs-dir", str(tmp_path / "runs"), "--parallel-folds", "1", "-o", "epochs=2",
    ]  # fmt: skip
    r = CliRunner().invoke(app, run)
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if "epoch" in line]
    assert any("fold 0 (sub01): epoch 1/2 loss" in line for line in lines), r.stderr
    assert any("epoch 2/2" in line for line in lines)
    r = CliRunner().invoke(app, ["--quiet", *run, "--run-id", "quiet"])
    assert r.exit_code == 0 and "epoch 1/2" not in r.stderr


def test_readme_documents_every_exit_code():
    import re

    text = (REPO / "README.md").read_text()
    table = text[text.index("Exit codes:") :].split("\n\n")[1]
    documented = {int(m) for m in re.findall(r"^\| (\d) \|", table, re.M)}
    assert documented == {int(c) for c in errors.ExitCode}
