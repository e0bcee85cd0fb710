"""Data identity: every run records which data it saw; resume, merge and the leaderboard never mix data."""

import json

import pytest
from _synth import small_synth
from typer.testing import CliRunner

from mer.errors import ExitCode
from mer.protocols.config import dataset_entry
from mer.protocols.fingerprint import DataMismatchError, synth_params
from mer.protocols.runner import RunConfig, RunConfigError, merge_runs, run_bench
from mer.registrations import load_all

load_all()


def _run(runs, **kw):
    return run_bench(RunConfig(model="chance", protocol="loso-synth-3", **kw), runs_dir=runs)


def _meta(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def test_run_records_fingerprint_and_non_default_synthme_is_named(tmp_path):
    small_synth(tmp_path / "a", subjects=3, clips=8)
    result = _run(tmp_path / "runs")
    meta = _meta(result.run_dir)
    fp = meta["data_fingerprint"]
    assert fp["sheet_sha256"] and fp["layout"] == "numbered-frames"
    assert (
        fp["n_samples"]
        == sum(fp["class_counts"].values())
        == json.loads((result.run_dir / "metrics.json").read_text())["n_samples"]
    )
    assert fp["synth"]["subjects"] == 3 and fp["synth"]["clips_per_subject"] == 8
    # a 3-subject SynthME is not the benchmark's: its runs say so, in the run id too
    assert meta["data_name"] == f"synthme@{fp['data_id']}" and "@" in meta["protocol_label"]
    assert result.run_dir.name.startswith(f"loso-synth-3@{fp['data_id']}__chance-base")


def test_default_synthme_keeps_the_plain_names(tmp_path, monkeypatch):
    from mer.protocols import synthme

    # loso-synth-3 generates its SynthME on first use; a small one stands in for the default, whose
    # parameters are then the defaults.
    def fake_write(out, **kw):
        return small_synth(out, subjects=3, clips=8, register=False)

    monkeypatch.setattr(synthme, "write_synthme", fake_write)
    monkeypatch.setattr("mer.protocols.fingerprint.synth_params", lambda **given: _params_of(tmp_path))
    result = _run(tmp_path / "runs")
    meta = _meta(result.run_dir)
    assert meta["data_name"] == "synthme" and meta["protocol_label"] == "loso-synth-3"
    assert result.run_dir.name == "loso-synth-3__chance-base__seed0"


def _params_of(tmp_path):
    from mer.protocols.config import mer_home

    return json.loads((mer_home() / "data" / "synthme" / "SynthME-params.json").read_text())


def test_synth_params_are_the_generator_defaults():
    p = synth_params()
    assert p["subjects"] == 16 and p["clips_per_subject"] == 12 and p["seed"] == 0 and p["frames"] == [20, 60]


def test_cli_synth_does_not_repoint_the_benchmark_unless_register(tmp_path):
    from mer.cli import app

    args = ["data", "synth", "--subjects", "2", "--clips-per-subject", "2", "--width", "32", "--height", "32"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    assert dataset_entry("synthme") is None and "not registered" in r.output
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "y"), "--register"])
    assert r.exit_code == 0, r.output
    assert dataset_entry("synthme")["root"] == str((tmp_path / "y").resolve())


def test_resume_on_changed_data_is_refused_and_nothing_is_lost(tmp_path):
    small_synth(tmp_path / "a", subjects=3, clips=8)
    runs = tmp_path / "runs"
    first = run_bench(
        RunConfig(model="chance", protocol="loso-synth-3", folds="0"), runs_dir=runs, run_id="r"
    )
    before = (first.run_dir / "folds" / "fold_000.csv").read_bytes()
    small_synth(tmp_path / "b", subjects=3, clips=8, seed=7)  # same shape, other data, same name
    with pytest.raises(DataMismatchError, match="made on other data .*sheet_sha256"):
        run_bench(RunConfig(model="chance", protocol="loso-synth-3", folds="1"), runs_dir=runs, run_id="r")
    assert (first.run_dir / "folds" / "fold_000.csv").read_bytes() == before
    assert not (first.run_dir / "folds" / "fold_001.csv").exists()


def test_merge_refuses_runs_on_different_data(tmp_path):
    runs = tmp_path / "runs"
    small_synth(tmp_path / "a", subjects=3, clips=8)
    a = run_bench(RunConfig(model="chance", protocol="loso-synth-3", folds="0"), runs_dir=runs, run_id="a")
    small_synth(tmp_path / "b", subjects=3, clips=8, seed=7)
    b = run_bench(RunConfig(model="chance", protocol="loso-synth-3", folds="1"), runs_dir=runs, run_id="b")
    with pytest.raises(DataMismatchError, match="cannot merge .*other data"):
        merge_runs([a.run_dir, b.run_dir], runs / "m")
    assert not (runs / "m").exists()
    assert DataMismatchError("x").exit_code == ExitCode.INTEGRITY


def test_resume_with_other_commit_needs_allow_mixed_which_is_recorded(tmp_path, monkeypatch):
    import mer.protocols.runner as runner

    small_synth(tmp_path / "a", subjects=3, clips=8)
    runs = tmp_path / "runs"
    cfg = RunConfig(model="chance", protocol="loso-synth-3", folds="0")
    run_bench(cfg, runs_dir=runs, run_id="r")
    real = runner.environment
    monkeypatch.setattr(runner, "environment", lambda: {**real(), "git_commit": "f" * 40})
    cfg1 = RunConfig(model="chance", protocol="loso-synth-3", folds="1")
    with pytest.raises(RunConfigError, match="another git_commit .*--allow-mixed"):
        run_bench(cfg1, runs_dir=runs, run_id="r")
    result = run_bench(cfg1, runs_dir=runs, run_id="r", allow_mixed=True)
    meta = _meta(result.run_dir)
    assert meta["mixed"][0]["git_commit"]["now"] == "f" * 40 and meta["mixed"][0]["folds_before"] == [0]
    assert meta["folds"]["1"]["git_commit"] == "f" * 40 != meta["folds"]["0"]["git_commit"]


def test_leaderboard_separates_runs_on_two_synthme_generations(tmp_path):
    from mer.leaderboard.build import build_leaderboard

    runs = tmp_path / "runs"
    small_synth(tmp_path / "a", subjects=3, clips=8)
    a = _run(runs)
    small_synth(tmp_path / "b", subjects=4, clips=8, seed=3)
    b = _run(runs)
    assert a.run_dir != b.run_dir
    ids = [_meta(r.run_dir)["data_fingerprint"]["data_id"] for r in (a, b)]
    result = build_leaderboard(runs, tmp_path / "lb" / "LEADERBOARD.md")
    synth = [t for t in result.tables if t.key.startswith("loso-synth-3") and "/" not in t.key]
    assert len(synth) == 2  # one table per data, never one ranking
    shown = sorted([row["run"] for row in t.rows] for t in synth)
    assert shown == sorted([[a.run_dir.name], [b.run_dir.name]])
    text = result.out.read_text()
    assert all(f"on synthme@{i}" in text for i in ids) and "not comparable" in text
