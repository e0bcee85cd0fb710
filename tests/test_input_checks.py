"""Issue 16 point 4: input checked before anything is written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mer.cli import app
from mer.registrations import load_all

load_all()


def _bench(runs, *extra: str, model: str = "merclip"):
    args = ["bench", "run", "--model", model, "--protocol", "loso-synth-3", "--runs-dir", str(runs)]
    return CliRunner().invoke(
        app, [*args, "--size", "tiny", *extra] if model == "merclip" else [*args, *extra]
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("abc", "must be a whole number"),
        ("1e9", "must be a whole number"),
        ("1000000000", "must be in 1..100000"),
        ("-1", "must be in 1..100000"),
        ("0", "must be in 1..100000"),
        ("2.5", "must be a whole number"),
        ("true", "must be a whole number"),
    ],
)
def test_bad_epochs_are_usage_errors_and_nothing_is_written(tmp_path, value, why):
    runs = tmp_path / "runs"
    r = _bench(runs, "-o", f"epochs={value}")
    assert r.exit_code == 2, r.output
    assert "-o epochs=" in r.output and why in r.output and "Traceback" not in r.output
    assert not runs.exists()  # no run folder, not even an empty one


@pytest.mark.parametrize(
    ("model", "option", "why"),
    [
        ("lbptop-svm", "grid=abc", "must be a whole number"),
        ("lbptop-svm", "planes=xyz", "must be one of top, apex"),
        ("lbptop-svm", "c=-1", "must be in 0..1e+06"),
        ("ststnet", "lr=0", "must be greater than 0"),
        ("ststnet", "flip=yes", "must be true or false"),
        ("merclip", "recipe=fast", "must be one of paper, official"),
        ("chance", "epochs=3", "chance: unknown option(s) epochs"),
        ("merclip", "nosuchkey=1", "merclip: unknown option(s) nosuchkey"),
    ],
)
def test_options_are_checked_by_each_models_schema(tmp_path, model, option, why):
    runs = tmp_path / "runs"
    r = _bench(runs, "-o", option, model=model)
    assert r.exit_code == 2, r.output
    assert why in r.output
    assert not runs.exists()


def test_schema_matches_what_the_builders_take():
    """Every option the schema lists is accepted by the model's builder (a name the builder does not
    take would be let through by the check and refused later, inside a fold)."""
    import inspect

    from mer.zoo.api import MODELS
    from mer.zoo.options import option_schema

    for name in MODELS:
        spec = MODELS.get(name)
        params = inspect.signature(spec.build).parameters
        takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in params.values())
        for opt in option_schema(spec):
            assert opt.name in params or (takes_kwargs and spec.option_fields is not None), (name, opt.name)
    epochs = {o.name: o for o in option_schema(MODELS.get("merclip"))}["epochs"]
    assert epochs.type == "int" and epochs.describe_range() == "1..100000" and epochs.help


@pytest.mark.parametrize("folds", ["3-1", "0-99", "x", ","])
def test_bad_folds_leave_no_run_folder(tmp_path, folds):
    from tests._synth import small_synth

    small_synth(tmp_path / "synth", subjects=3, clips=6)
    runs = tmp_path / "runs"
    r = _bench(runs, "--folds", folds, model="chance")
    assert r.exit_code == 2, r.output
    assert "--folds" in r.output
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("run_id", ["../x", "a/b", "..", "/tmp/abs", ""])
def test_run_id_is_confined_to_the_runs_folder(tmp_path, run_id):
    runs = tmp_path / "work" / "runs"
    r = _bench(runs, "--run-id", run_id, model="chance")
    assert r.exit_code == 2, r.output
    assert "--run-id" in r.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written anywhere under tmp


def _digests(folder):
    import hashlib

    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_merge_out_refuses_an_existing_run_and_changes_nothing(tmp_path):
    from tests._synth import small_synth

    small_synth(tmp_path / "synth", subjects=3, clips=6)
    runs = tmp_path / "runs"
    base = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--runs-dir", str(runs)]
    for folds, rid in (("0", "a"), ("1-2", "b")):
        assert CliRunner().invoke(app, [*base, "--folds", folds, "--run-id", rid]).exit_code == 0
    merge = ["bench", "merge", str(runs / "a"), str(runs / "b"), "--out"]
    assert CliRunner().invoke(app, [*merge, str(runs / "m")]).exit_code == 0
    before = _digests(runs)
    for target in ("m", "a"):  # a finished merged run, and one of the inputs
        r = CliRunner().invoke(app, [*merge, str(runs / target)])
        assert r.exit_code == 2, r.output
        assert "exists and is not empty" in r.output
    assert _digests(runs) == before  # every file byte-identical


def _mislabel(root, old: str, new: str) -> list[int]:
    """Replace emotion ``old`` by ``new`` in the SynthME sheet; returns the changed sheet rows (line
    numbers, header = 1)."""
    import csv

    sheet = root / "SynthME-coding.csv"
    with open(sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    changed = []
    for line, r in enumerate(rows, start=2):
        if r["Estimated Emotion"].lower() == old:
            r["Estimated Emotion"] = new
            changed.append(line)
    with open(sheet, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return changed


def test_unknown_labels_are_reported_with_rows_and_stop_a_run_unless_allowed(tmp_path):
    import json

    from tests._synth import small_synth

    root = small_synth(tmp_path / "synth", subjects=3, clips=6)
    rows = _mislabel(root, "happiness", "happyness")
    assert rows, "the synthetic sheet has happiness clips"
    sheet = root / "SynthME-coding.csv"
    r = CliRunner().invoke(
        app, ["data", "stats", "synthme", "--annotations", str(sheet), "--protocol", "loso-synth-3", "--json"]
    )
    assert r.exit_code == 0, r.output
    stats = json.loads(r.stdout)
    unknown = [i for i in stats["issues"] if "unknown emotion 'happyness'" in i["problem"]]
    assert sorted(i["row"] for i in unknown) == rows
    assert any(i["problem"] == "class 'positive' has no sample" for i in stats["issues"])
    assert stats["class_counts"]["positive"] == 0

    runs = tmp_path / "runs"
    base = ["bench", "run", "--model", "chance", "--protocol", "loso-synth-3", "--runs-dir", str(runs)]
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 3, r.output
    assert (
        f"{len(rows)} sample(s) dropped for an unknown emotion" in r.output and "--allow-dropped" in r.output
    )
    assert "class(es) with no sample: positive" in r.output
    assert not runs.exists() or not any(runs.iterdir())  # refused before a run folder exists

    r = CliRunner().invoke(app, [*base, "--allow-dropped", "--run-id", "allowed"])
    assert r.exit_code == 0, r.output
    meta = json.loads((runs / "allowed" / "run.json").read_text())
    assert meta["allow_dropped"] is True
    assert sorted(d["row"] for d in meta["dropped"]["unknown_emotion"]) == rows
    assert meta["dropped"]["empty_classes"] == ["positive"]
