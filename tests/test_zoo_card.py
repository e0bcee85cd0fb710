"""Model cards: the Hub metadata huggingface_hub's ModelCard writes (model-index, base_model, licence), a
re-saved card parsing again, and the loopback hub validating the YAML as the Hub does."""

from __future__ import annotations

import huggingface_hub.constants as hf_constants
import pytest
from fakehub import FakeHub
from hub_metadata import check_readme
from huggingface_hub import ModelCard

from mer.zoo.artifact import ArtifactConfig
from mer.zoo.card import base_model, parse_card, render_card

CLASSES = ["negative", "positive", "surprise"]
METRICS = {"uf1": 0.71234, "uar": 0.70111, "acc": 0.75, "wf1": 0.7, "folds_done": 26, "n_folds": 26,
           "per_fold": {"uf1": {"mean": 0.6, "std": 0.2}}}  # fmt: skip


def _config(**kw) -> ArtifactConfig:
    base = dict(model="merclip", size="base", num_classes=3, classes=CLASSES, protocol="loso-casme2-3",
                dataset="casme2", run_id="r1", fold=0, metrics=METRICS, weights_sha256="ab" * 32,
                options={"init": "hf-hub:some-org/start-weights@v2"})  # fmt: skip
    base.update(kw)
    return ArtifactConfig(**base)


def test_complete_run_card_has_model_index_base_model_and_licence() -> None:
    card = render_card(_config(), repo_id="mer-org/merclip-casme2", revision="main")
    front = parse_card(card)
    assert front["license"] == "other" and front["license_name"] == "casme2-dataset-terms"
    assert front["license_link"] == "README.md#dataset-licence" and "## Dataset licence" in card
    assert front["base_model"] == "some-org/start-weights"
    assert front["metrics"] == ["f1", "recall", "accuracy"]
    [entry] = front["model-index"]
    assert entry["name"] == "merclip-base-loso-casme2-3"
    [result] = entry["results"]
    assert result["task"]["type"] == "video-classification"
    assert result["dataset"]["type"] == "casme2" and result["dataset"]["config"] == "loso-casme2-3"
    got = {m["type"]: m["value"] for m in result["metrics"]}
    assert got == {"f1": 0.7123, "recall": 0.7011, "accuracy": 0.75}  # METRICS rounded to 4 places
    assert front["mer_metrics"]["uf1"] == 0.71234 and front["mer_classes"] == CLASSES
    # a real usage snippet, no placeholder
    assert 'load_artifact("hf-hub:mer-org/merclip-casme2")' in card and "<org>" not in card
    assert check_readme(card, "model") == []


def test_resaved_card_parses_again(tmp_path) -> None:
    card = render_card(_config(select="oracle"))
    path = tmp_path / "README.md"
    ModelCard(card).save(path)
    again = ModelCard.load(path)
    assert parse_card(str(again)) == parse_card(card)
    again.data.tags.append("extra")  # edited through the library and saved once more
    again.save(path)
    front = parse_card(path.read_text(encoding="utf-8"))
    assert front["tags"][-1] == "extra" and front["model-index"][0]["results"][0]["metrics"][0][
        "name"
    ].endswith("† oracle selection")


def test_base_model_from_what_the_run_recorded() -> None:
    cache = "/root/.cache/huggingface/hub/models--Andy1621--uniformerv2/snapshots/0abc/k400.pyth"
    assert base_model(_config(options={"init": cache})) == "Andy1621/uniformerv2"
    assert base_model(_config(options={"init": "clip"})) == "timm/vit_base_patch16_clip_224.openai"
    assert base_model(_config(options={"init": "random"})) is None
    assert base_model(_config(options={})) is None
    assert "base_model" not in parse_card(render_card(_config(options={})))


def test_partial_run_has_no_evaluation_results() -> None:
    card = render_card(_config(metrics={**METRICS, "folds_done": 3}))
    assert "model-index" not in parse_card(card) and "not every fold" in card


def test_loopback_hub_validates_yaml_like_the_hub(monkeypatch) -> None:
    good = render_card(_config())
    bad_licence = good.replace("license_name: casme2-dataset-terms\n", "")
    bad_index = good.replace("      type: video-classification\n", "      type: 7\n", 1)
    assert bad_licence != good and bad_index != good
    with FakeHub() as hub:
        monkeypatch.setattr(hf_constants, "ENDPOINT", hub.endpoint)  # ModelCard.validate posts there
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        ModelCard(good).validate()
        with pytest.raises(ValueError, match="license_name"):
            ModelCard(bad_licence).validate()
        with pytest.raises(ValueError, match=r"model-index\[0\]\.results\[0\]\.task"):
            ModelCard(bad_index).validate()
