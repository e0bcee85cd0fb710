"""The zoo end to end against a fake Hub on 127.0.0.1: push a tiny trained run, pull it into an empty
cache, get identical predictions, work offline, refuse altered downloads, continue training from a run."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants as hf_constants
import numpy as np
import pandas as pd
import pytest
from _synth import tiny_run
from fakehub import FakeHub
from typer.testing import CliRunner

from mer.protocols.config import add_dataset
from mer.protocols.prepare import Recipe
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.runner import load_protocol_data
from mer.protocols.synthme import write_synthme
from mer.registrations import load_all
from mer.zoo.artifact import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, IntegrityError, load_artifact
from mer.zoo.card import parse_card
from mer.zoo.hub import NotCachedError, pull, push

TOKEN = "hf_fake_token_never_written_0123456789"
REPO = "mer-test/merclip-tiny-synth"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A MER_HOME with a small SynthME and one finished merclip-tiny run that kept its weights."""
    home = tmp_path_factory.mktemp("zoo_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MER_HOME", str(home / "mer"))
        load_all()
        write_synthme(home / "synthme", subjects=3, clips_per_subject=6, width=64, height=64, frames=(12, 16))
        add_dataset("synthme", home / "synthme")
        tiny_run(home / "runs", run_id="source")
    return home


@pytest.fixture
def env(home, tmp_path, monkeypatch) -> Path:
    """Online against nothing yet: the test's own empty HF cache, a token in the environment only."""
    monkeypatch.setenv("MER_HOME", str(home / "mer"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    return tmp_path


def _go_offline(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def _fold0_test_clips(config):
    protocol = PROTOCOLS.get(config.protocol)
    _, clips = load_protocol_data(protocol, Recipe(**config.recipe))
    fold = protocol.folds(clips.samples)[config.fold]
    return clips.subset(fold.test)


def test_push_pull_same_predictions_then_offline(home, env, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        pushed = push(home / "runs" / "source", REPO, private=True)
        # one commit holding exactly the three artifact files
        assert [m for m, p in hub.requests if p.endswith("/commit/main")] == ["POST"]
        assert set(hub.files(REPO)) == {CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, ".gitattributes"}
        assert hub.repos[REPO].private
        assert pushed.commit == hub.repos[REPO].refs["main"]

        assert not (env / "hf-cache").exists() or not any((env / "hf-cache").iterdir())
        pulled = pull(f"hf-hub:{REPO}")
        assert not pulled.offline and pulled.commit == pushed.commit
        assert (pulled.path / WEIGHTS_FILE).read_bytes() == (
            home / "runs/source/weights/fold_000.safetensors"
        ).read_bytes()

    # the Hub is gone: loading reads the cache only
    model = load_artifact(f"hf-hub:{REPO}")
    assert model.config.model == "merclip" and model.config.fold == 0
    test = _fold0_test_clips(model.config)
    pred = model.estimator.predict(test)
    run_pred = pd.read_csv(home / "runs/source/predictions.csv", dtype={"sample": str})
    run_pred = run_pred[run_pred["fold"] == 0].set_index("sample").loc[list(test.sample_ids)]
    np.testing.assert_array_equal(pred.labels, run_pred["y_pred"].to_numpy())
    probs = run_pred[[f"p_{c}" for c in model.config.classes]].to_numpy()
    np.testing.assert_allclose(pred.probs, probs, atol=2e-6)

    # offline: the second pull is served by the cache; an uncached one names the command that fixes it
    _go_offline(monkeypatch)
    again = pull(f"hf-hub:{REPO}")
    assert again.offline and again.path == pulled.path
    with pytest.raises(NotCachedError, match=r"HF_HUB_OFFLINE=0 mer zoo pull mer-test/not-pulled"):
        pull("hf-hub:mer-test/not-pulled")
    with pytest.raises(FileNotFoundError, match=r"mer zoo pull mer-test/not-pulled"):
        load_artifact("hf-hub:mer-test/not-pulled")

    # the token went to the client only: nowhere on disk
    for root in (env, home):
        for f in root.rglob("*"):
            if f.is_file() and f.stat().st_size < 5_000_000:
                assert TOKEN.encode() not in f.read_bytes(), f


def test_altered_or_cut_short_download_is_refused(home, env, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        push(home / "runs" / "source", REPO)
        good = hub.files(REPO)[WEIGHTS_FILE]
        hub.serve_instead(REPO, WEIGHTS_FILE, good[: len(good) // 2])  # cut short, served consistently
        with pytest.raises(IntegrityError, match=r"model\.safetensors: sha256 .* does not match .*cut short"):
            pull(REPO)
        # a cached corrupt file is never loaded either, and the message says how to refetch it
        with pytest.raises(IntegrityError, match=r"--force-download"):
            load_artifact(f"hf-hub:{REPO}")
        altered = bytearray(good)
        altered[-3] ^= 0xFF
        hub.serve_instead(REPO, WEIGHTS_FILE, bytes(altered))
        with pytest.raises(IntegrityError, match="altered"):
            pull(REPO, force_download=True)
        hub.serve_instead(REPO, WEIGHTS_FILE, good)
        assert pull(REPO, force_download=True).config.weights_sha256


def test_card_of_pushed_run_has_metrics_and_protocol(home, env, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        push(home / "runs" / "source", REPO)
        card = hub.files(REPO)[CARD_FILE].decode()
        config = json.loads(hub.files(REPO)[CONFIG_FILE])
    metrics = json.loads((home / "runs/source/metrics.json").read_text())
    front = parse_card(card)
    assert front["mer_protocol"] == "loso-synth-3" and front["mer_model"] == "merclip"
    assert front["mer_selection"] == "last" and front["mer_reconstruction"] is False
    assert front["mer_classes"] == ["negative", "positive", "surprise"]
    assert front["mer_metrics"]["uf1"] == pytest.approx(metrics["uf1"])
    assert front["mer_weights_sha256"] == config["weights_sha256"]
    for key, label in (("uf1", "UF1"), ("uar", "UAR"), ("acc", "ACC")):
        assert f"| {label} | {metrics[key]:.4f} |" in card
    assert "`loso-synth-3`" in card and "last epoch (honest" in card
    assert "## Dataset licence" in card and "SynthME is synthetic" in card
    assert "## Citation" in card and "MER-CLIP" in card
    assert config["protocol"] == "loso-synth-3" and config["recipe"]["frames"] == 8
    # written by huggingface_hub's ModelCard; a run of fold 0 only gets no Hub evaluation results
    assert front["license"] == "other" and front["license_name"] == "synthme-dataset-terms"
    assert front["license_link"] == "README.md#dataset-licence" and "model-index" not in front
    assert "not every fold: no evaluation results in the metadata" in card
    assert f'load_artifact("hf-hub:{REPO}")' in card and f"mer zoo pull {REPO}\n" in card


def test_push_to_a_missing_branch_creates_it(home, env, monkeypatch):
    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        pushed = push(home / "runs" / "source", REPO, revision="dev")
        repo = hub.repos[REPO]
        assert ("POST", f"/api/models/{REPO}/branch/dev") in hub.requests  # as `hf upload --revision`
        assert pushed.commit == repo.refs["dev"] and set(hub.files(REPO, "main")) == {".gitattributes"}
        card = hub.files(REPO, "dev")[CARD_FILE].decode()
        assert f'load_artifact("hf-hub:{REPO}@dev")' in card and f"mer zoo pull {REPO} --revision dev" in card
        again = push(home / "runs" / "source", REPO, revision="dev", message="again")  # exists: no new branch
        assert [p for _, p in hub.requests].count(f"/api/models/{REPO}/branch/dev") == 1
        assert repo.refs["dev"] == again.commit


def test_bench_run_init_from_finished_run(home, env):
    import torch
    from safetensors.torch import load_file

    from mer.cli import app
    from mer.zoo.api import MODELS

    runs = home / "runs"
    args = [
        "bench",
        "run",
        "--model",
        "merclip",
        "--protocol",
        "loso-synth-3",
        "--size",
        "tiny",
        "--folds",
        "0",
        "-o",
        "epochs=1",
        "--runs-dir",
        str(runs),
        "--run-id",
        "chained",
        "--init",
        "run:source",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    src = runs / "source" / "weights" / "fold_000.safetensors"
    meta = json.loads((runs / "chained" / "run.json").read_text())
    assert meta["options"]["init"] == str(src.resolve()) and meta["status"] in ("partial", "complete")

    # what the builder does with it: the vision side starts as the finished run's, the head is new
    saved = load_file(str(src))
    spec = MODELS.get("merclip")
    started = spec.build(num_classes=3, size="tiny", seed=1, init=meta["options"]["init"]).model.state_dict()
    fresh = spec.build(num_classes=3, size="tiny", seed=1).model.state_dict()
    visual = [k for k in saved if k.startswith("visual.")]
    assert visual and all(torch.equal(started[k], saved[k]) for k in visual)
    assert not all(torch.equal(fresh[k], saved[k]) for k in visual)

    # a run that kept no weights cannot be an init source, nor be pushed: both name --save-weights
    bare = runs / "no-weights"
    bare.mkdir(exist_ok=True)
    (bare / "run.json").write_text((runs / "source" / "run.json").read_text())
    result = CliRunner().invoke(app, [*args[:-1], "run:no-weights"])
    assert result.exit_code == 3 and "--save-weights last" in result.output
    with pytest.raises(FileNotFoundError, match="--save-weights last"):
        push(bare, REPO)
    # and a classical model takes no --init
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "run",
            "--model",
            "chance",
            "--protocol",
            "loso-synth-3",
            "--runs-dir",
            str(runs),
            "--init",
            "run:source",
        ],
    )
    assert result.exit_code == 2 and "only deep models" in result.output
