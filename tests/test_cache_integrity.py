"""Prepared and flow caches record what they hold; a damaged one is named with its rebuilding command."""

import json

import numpy as np
import pytest
from _synth import small_synth
from typer.testing import CliRunner

from mer.errors import ExitCode
from mer.protocols.cache import CacheError
from mer.protocols.io import file_sha256
from mer.protocols.prepare import Recipe, load_prepared, prepare
from mer.registrations import load_all

load_all()
RECIPE = Recipe(frames=8, size=32)
REBUILD = "mer data prepare synthme --force --frames 8 --size 32"


def _overwrite_middle(path, n=4096):
    """Same size, other bytes: what a size check cannot see."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + n] = bytes(255 - b for b in data[mid : mid + n])
    path.write_bytes(bytes(data))


def test_meta_records_size_shape_and_sha256(tmp_path):
    root = small_synth(tmp_path / "s", subjects=2, clips=3)
    prep = prepare("synthme", root, RECIPE)
    rec = json.loads((prep.path / "meta.json").read_text())["files"]["frames.npy"]
    assert rec["shape"] == [6, 8, 32, 32, 3] and rec["dtype"] == "uint8"
    assert rec["sha256"] == file_sha256(prep.path / "frames.npy")
    assert rec["bytes"] == (prep.path / "frames.npy").stat().st_size


def test_overwritten_frames_are_caught_by_the_checksum_not_the_size_check(tmp_path):
    root = small_synth(tmp_path / "s", subjects=2, clips=3)
    prep = prepare("synthme", root, RECIPE)
    _overwrite_middle(prep.path / "frames.npy")
    load_prepared(prep.path, "size")  # sizes and shapes still agree
    with pytest.raises(CacheError) as e:
        load_prepared(prep.path, "sha256")
    assert str(prep.path) in str(e.value) and REBUILD in str(e.value) and "SHA-256" in str(e.value)
    assert e.value.exit_code == ExitCode.INTEGRITY


def test_truncated_frames_is_a_clear_error_and_force_rebuilds_the_same_bytes(tmp_path):
    root = small_synth(tmp_path / "s", subjects=2, clips=3)
    prep = prepare("synthme", root, RECIPE)
    good = file_sha256(prep.path / "frames.npy")
    with open(prep.path / "frames.npy", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(CacheError, match=r"frames.npy is 1000 bytes, its record says \d+; rebuild it with"):
        prepare("synthme", root, RECIPE)  # prepare itself no longer dies in numpy
    again = prepare("synthme", root, RECIPE, force=True)
    assert again.created and again.path == prep.path
    assert file_sha256(again.path / "frames.npy") == good
    assert not list(again.path.parent.glob(".*tmp-*")) and not list(again.path.parent.glob(".*old-*"))


def test_a_killed_builders_workspace_is_removed_by_the_next_build(tmp_path):
    root = small_synth(tmp_path / "s", subjects=1, clips=2)
    prep = prepare("synthme", root, RECIPE)
    stale = prep.path.parent / f".{prep.path.name}.tmp-999999"
    stale.mkdir()
    (stale / "frames.npy").write_bytes(b"half")
    prepare("synthme", root, RECIPE, force=True)
    assert not stale.exists()


def test_run_verifies_checksums_once_unless_no_verify_which_is_recorded(tmp_path):
    from mer.protocols.runner import RunConfig, run_bench

    small_synth(tmp_path / "s", subjects=3, clips=8)
    cfg = RunConfig(model="chance", protocol="loso-synth-3", folds="0", recipe={"frames": 8, "size": 32})
    first = run_bench(cfg, runs_dir=tmp_path / "runs", run_id="a")
    meta = json.loads((first.run_dir / "run.json").read_text())
    assert meta["cache_check"]["level"] == "built"  # made now: its checksums come from these bytes
    assert run_bench(cfg, runs_dir=tmp_path / "runs", run_id="a2").run_dir.is_dir()
    meta = json.loads((tmp_path / "runs" / "a2" / "run.json").read_text())
    assert meta["cache_check"]["level"] == "sha256" and "skipped_by" not in meta["cache_check"]
    _overwrite_middle(prep_path(meta) / "frames.npy")
    with pytest.raises(CacheError, match="--force"):
        run_bench(cfg, runs_dir=tmp_path / "runs", run_id="b")
    assert not (tmp_path / "runs" / "b").exists()  # refused before anything was written
    done = run_bench(cfg, runs_dir=tmp_path / "runs", run_id="c", verify=False)
    check = json.loads((done.run_dir / "run.json").read_text())["cache_check"]
    assert check["level"] == "size" and check["skipped_by"] == "--no-verify"


def prep_path(meta):
    from pathlib import Path

    return Path(meta["prepared"])


def test_cli_data_verify_names_damaged_caches_and_exits_integrity(tmp_path):
    from mer.cli import app

    root = small_synth(tmp_path / "s", subjects=2, clips=2)
    good = prepare("synthme", root, RECIPE)
    bad = prepare("synthme", root, Recipe(frames=8, size=24))
    r = CliRunner().invoke(app, ["data", "verify", "synthme"])
    assert r.exit_code == 0 and "2 cache(s) checked, 0 damaged" in r.output
    _overwrite_middle(bad.path / "frames.npy", 64)
    r = CliRunner().invoke(app, ["data", "verify"])
    assert r.exit_code == ExitCode.INTEGRITY
    assert f"ok       {good.path}" in r.output.replace("\n", "") or str(good.path) in r.output
    assert "1 damaged" in r.output and "--size 24" in r.output


def test_damaged_flow_cache_is_named(tmp_path):
    from mer.protocols.flow import FlowConfig, ensure_flow, flow_cache_path

    root = small_synth(tmp_path / "s", subjects=1, clips=3)
    prep = prepare("synthme", root, RECIPE)
    cfg = FlowConfig(method="farneback", side=16)
    flow = np.asarray(ensure_flow(prep, cfg))
    path = flow_cache_path(prep, cfg)
    assert np.array_equal(np.asarray(ensure_flow(prep, cfg)), flow)  # second call: the cached file
    with open(path, "r+b") as f:
        f.truncate(200)
    with pytest.raises(CacheError, match=rf"damaged cache {prep.path}: {path.name} is 200 bytes"):
        ensure_flow(prep, cfg)
