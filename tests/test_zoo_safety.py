"""Zoo safety and plumbing without training: pickles that need code are refused, altered or truncated
artifacts are never loaded, classical estimators round-trip their weights, converters report what did
not fit, and the catalogue lists nothing that was not published."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file
from typer.testing import CliRunner

from mer.protocols.clipset import ClipSet
from mer.protocols.sample import Sample
from mer.zoo.artifact import (
    WEIGHTS_FILE,
    ArtifactConfig,
    IntegrityError,
    load_artifact,
    sha256_file,
    write_config,
)
from mer.zoo.convert import UnsafeCheckpointError, convert_checkpoint, read_checkpoint
from mer.zoo.hub import load_catalogue, parse_ref
from mer.zoo.init import resolve_init


class NeedsCode:
    """Unpickling this runs the test module's code: exactly what weights_only refuses."""

    def __init__(self) -> None:
        self.weight = torch.ones(2)


def _clips(n: int = 12) -> ClipSet:
    rng = np.random.default_rng(0)
    store = rng.integers(0, 255, (n, 4, 16, 16, 3), dtype=np.uint8)
    samples = [Sample("synthme", f"s{i % 3}", f"c{i}", "", 0, 1, 2, "happiness") for i in range(n)]
    return ClipSet(store, np.arange(n), samples, np.arange(n) % 3, ("a", "b", "c"))


def _chance_artifact(folder: Path) -> Path:
    folder.mkdir(parents=True)
    save_file({"prior": np.array([0.2, 0.3, 0.5])}, str(folder / WEIGHTS_FILE))
    config = ArtifactConfig(
        model="chance",
        size="base",
        num_classes=3,
        classes=["a", "b", "c"],
        protocol="loso-synth-3",
        weights_sha256=sha256_file(folder / WEIGHTS_FILE),
        weights_bytes=(folder / WEIGHTS_FILE).stat().st_size,
    )
    write_config(folder, config)
    return folder


def test_pickle_that_needs_code_is_refused(tmp_path):
    bad = tmp_path / "uniformerv2_k710.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": NeedsCode()}, bad)
    with pytest.raises(UnsafeCheckpointError, match=r"refused: this checkpoint is a pickle that needs code"):
        read_checkpoint(bad)
    with pytest.raises(UnsafeCheckpointError, match="weights_only=True"):
        resolve_init(str(bad), "merclip")
    good = tmp_path / "clean.pyth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, good)
    state, skipped = read_checkpoint(good)
    assert list(state) == ["w"] and skipped == ["epoch"]


def test_tampered_or_truncated_artifact_is_never_loaded(tmp_path):
    folder = _chance_artifact(tmp_path / "art")
    model = load_artifact(f"local-dir:{folder}")
    np.testing.assert_allclose(model.estimator.prior, [0.2, 0.3, 0.5])
    weights = folder / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(
        IntegrityError, match=r"model\.safetensors: sha256 [0-9a-f]{64} does not match [0-9a-f]{64}"
    ):
        load_artifact(f"local-dir:{folder}")
    weights.write_bytes(bytes(data[:20]))
    with pytest.raises(IntegrityError, match=r"cut short"):
        load_artifact(str(folder))
    with pytest.raises(IntegrityError):
        resolve_init(f"local-dir:{folder}", "merclip")


def test_lbptop_weights_round_trip():
    from mer.baselines.lbptop import LBPTOPSVM, LBPTOPConfig

    clips = _clips()
    est = LBPTOPSVM(3, 0, LBPTOPConfig(grid=2))
    est.fit(clips)
    state = {k: np.asarray(v) for k, v in est.state_dict().items()}
    again = LBPTOPSVM(3, 0, LBPTOPConfig(grid=2))
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.predict(clips).probs, est.predict(clips).probs)
    with pytest.raises(ValueError, match="lacks svm.coef"):
        LBPTOPSVM(3).load_state_dict({k: v for k, v in state.items() if k != "svm.coef"})


def test_uniformerv2_converter_reports_missing_unexpected_and_shapes(tmp_path):
    from mer.zoo.convert import _merclip_visual_target

    target = _merclip_visual_target("tiny")
    patch = target["visual.encoder.patch_embed.weight"].shape
    ln = target["visual.encoder.blocks.0.norm1.weight"].shape
    ckpt = {
        "backbone.conv1.weight": torch.randn(*patch),
        "backbone.transformer.resblocks.0.ln_1.weight": torch.ones(*ln),
        "backbone.transformer.resblocks.0.ln_1.bias": torch.zeros(ln[0] + 1),
        "backbone.not_a_reference_key": torch.zeros(1),
    }
    path = tmp_path / "ref.pth"
    torch.save({"state_dict": ckpt, "meta": {"epoch": 1}}, path)
    report = convert_checkpoint(path, "uniformerv2", size="tiny")
    assert set(report.converted) == {
        "visual.encoder.patch_embed.weight",
        "visual.encoder.blocks.0.norm1.weight",
    }
    assert report.unused == ["not_a_reference_key"]
    assert report.mismatched and report.mismatched[0].startswith("visual.encoder.blocks.0.norm1.bias")
    assert "visual.encoder.global_query" in report.missing and report.skipped == ["meta"]
    assert "missing" in report.summary() and "shape mismatch" in report.summary()


def test_viclip_text_converter_keeps_the_text_tower_only(tmp_path):
    path = tmp_path / "viclip.pth"
    torch.save(
        {
            "model": {
                "text_encoder.ln_final.weight": torch.ones(512),
                "text_encoder.transformer.resblocks.0.ln_1.bias": torch.zeros(512),
                "text_encoder.token_embedding.weight": torch.zeros(3, 512),  # wrong vocab size
                "vision_encoder.conv1.weight": torch.zeros(1),
                "temp": torch.tensor(0.01),
            }
        },
        path,
    )
    report = convert_checkpoint(path, "viclip-text")
    assert set(report.converted) == {"ln_final.weight", "transformer.resblocks.0.ln_1.bias"}
    assert set(report.unused) == {"vision_encoder.conv1.weight", "temp"}
    assert report.mismatched[0].startswith("token_embedding.weight: (3, 512)")
    assert "text_projection" in report.missing


def test_catalogue_is_honest_and_refs_parse(tmp_path):
    entries = load_catalogue()
    for e in entries:
        assert e.repo_id and e.published, e  # nothing announced that does not exist
    assert [e.name for e in entries if e.kind == "mer"] == []  # mer has published no trained model yet
    assert parse_ref("clip-vit-b16").kind == "open_clip"
    assert resolve_init("clip-vit-b16", "merclip") == "clip"
    ref = parse_ref("hf-hub:org/name@v1")
    assert (ref.kind, ref.target, ref.revision) == ("hf-hub", "org/name", "v1")
    assert parse_ref("run:abc").kind == "run" and parse_ref(str(tmp_path)).kind == "local-dir"
    with pytest.raises(ValueError, match="unknown model reference"):
        parse_ref("no-such-model")


def test_zoo_cli_list_and_offline_pull_hint(tmp_path, monkeypatch):
    from mer import cli
    from mer.cli import app

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(cli.console, "width", 300)  # no wrapped cells
    result = CliRunner().invoke(app, ["zoo", "list"])
    assert result.exit_code == 0 and "clip-vit-b16" in result.output
    result = CliRunner().invoke(app, ["zoo", "pull", "hf-hub:someone/never-pulled"])  # tests run offline
    assert result.exit_code == 5  # a Hub error
    assert "HF_HUB_OFFLINE=0 mer zoo pull someone/never-pulled" in " ".join(result.output.split())


def test_artifact_config_is_covered_by_its_checksum_and_validated(tmp_path):
    """Every field of config.json, not only the weights: an edit is refused (exit 4 through the CLI),
    and a config whose checksum was recomputed after a bad edit is refused by field (``frames: 1e9``
    would otherwise make the loader sample a billion frames)."""
    import cv2

    from mer.cli import app
    from mer.zoo.artifact import CONFIG_FILE, config_digest

    folder = _chance_artifact(tmp_path / "art")
    load_artifact(f"local-dir:{folder}")  # untouched: loads
    path = folder / CONFIG_FILE
    good = json.loads(path.read_text())
    for field, value in (("classes", ["x", "b", "c"]), ("recipe", {"frames": 10**9}), ("seed", 7)):
        path.write_text(json.dumps({**good, field: value}))
        with pytest.raises(IntegrityError, match="config_sha256"):
            load_artifact(f"local-dir:{folder}")
    clip = tmp_path / "clip"
    clip.mkdir()
    cv2.imwrite(str(clip / "0.png"), np.zeros((8, 8, 3), np.uint8))
    r = CliRunner().invoke(app, ["predict", str(clip), "--model", f"local-dir:{folder}"])
    assert r.exit_code == 4 and "edited or damaged" in r.output  # an integrity failure
    del good["config_sha256"]
    path.write_text(json.dumps(good))
    with pytest.raises(IntegrityError, match="records no config_sha256"):
        load_artifact(f"local-dir:{folder}")
    for field, value, why in (
        ("recipe", {"frames": 10**9}, r"recipe\.frames 1000000000 is not a whole number in 1\.\.1024"),
        ("recipe", {"frames": 1e9}, r"recipe\.frames 1000000000\.0 is not a whole number"),
        ("num_classes", 4, "has 3 names for num_classes 4"),
        ("options", {"epochs": 3}, "chance: unknown option"),
    ):
        data = {**good, field: value}
        data["config_sha256"] = config_digest(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError, match=why):
            load_artifact(f"local-dir:{folder}")
    r = CliRunner().invoke(app, ["predict", str(clip), "--model", f"local-dir:{folder}"])
    assert r.exit_code == 3 and "chance: unknown option" in r.output  # bad input
