"""Every MER-CLIP-family registered model: CPU forward/backward at size tiny, text cache, prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mer.baselines  # noqa: F401  (registers uniformerv2*, emo-clip)
import mer.merclip  # noqa: F401
from mer.merclip.variants import MERCLIP_VARIANTS
from mer.protocols.clipset import ClipSet
from mer.protocols.sample import AU, Sample
from mer.zoo.api import MODELS

FAMILY = sorted(MERCLIP_VARIANTS) + [
    "uniformerv2",
    "uniformerv2-lsfm",
    "uniformerv2-augmix",
    "uniformerv2-lsfm-augmix",
    "emo-clip",
]
COMBOS = [(AU(6), AU(12)), (AU(1), AU(2), AU(5)), (AU(4), AU(7, "L")), (AU(12, "R"),)]


def _clips(n: int = 8, frames: int = 8, size: int = 48) -> ClipSet:
    rng = np.random.default_rng(0)
    store = rng.integers(0, 255, (n, frames, size, size, 3), dtype=np.uint8)
    samples = [
        Sample("casme2", f"s{i % 2}", f"c{i}", "", 0, 1, 2, "happiness", COMBOS[i % len(COMBOS)])
        for i in range(n)
    ]
    return ClipSet(store, np.arange(n), samples, np.arange(n) % 3, ("negative", "positive", "surprise"))


def test_every_table_row_is_registered():
    expected = {
        "merclip", "merclip-no-align", "merclip-no-eim", "merclip-no-progressive", "merclip-no-aug",
        "merclip-lsfm", "merclip-augmix", "merclip-facs-prompts", "merclip-shuffled-aus",
        "merclip-templates-1", "merclip-templates-3", "merclip-templates-5", "merclip-templates-10",
        "uniformerv2", "emo-clip",
    }  # fmt: skip
    assert expected <= set(MODELS.list())
    for name in FAMILY:
        spec = MODELS.get(name)
        assert spec.sizes == ("base", "tiny") and spec.recipe["tiny"] == {"frames": 8, "size": 48}


@pytest.mark.parametrize("name", FAMILY)
def test_tiny_forward_backward(name):
    torch.manual_seed(0)
    est = MODELS.get(name).build(num_classes=3, size="tiny", seed=0, device="cpu")
    clips = _clips()
    est.setup_fn(est, clips)
    batch = est.batch_fn(clips, np.arange(6), True, est.device)
    assert batch["video"].shape == (6, 3, 8, 48, 48)
    model = est.model.train()
    loss, terms = est.loss_fn(model, batch, 20)  # mid-run: both loss weights are non-zero
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sum(float(p.grad.abs().sum()) for p in trainable) > 0
    align = MERCLIP_VARIANTS.get(name, (None,))[0]
    has_text = model.text is not None
    assert has_text == ("clip" in terms)
    if has_text:
        text_params = list(model.text.parameters())
        assert text_params and all(not p.requires_grad and p.grad is None for p in text_params)
        assert model.logit_scale.value.grad is not None and model.logit_scale.value.grad != 0
    if align is not None and align.head == "linear" or name.startswith("uniformerv2"):
        assert model.visual.token_proj is None
    probs = est.predict(clips.subset(np.arange(3))).probs
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_prompt_bank_caches_each_combination_and_template_once():
    est = MODELS.get("merclip-templates-3").build(num_classes=3, size="tiny", seed=0, device="cpu")
    clips = _clips()
    est.setup_fn(est, clips)
    bank = est.context["prompt_bank"]
    assert bank.features.shape[:3] == (len(COMBOS), 1, 3)
    assert len(bank.texts) == len(COMBOS) * 3
    expected = "a combination of raising the cheeks and pulling the corners of the lips"
    assert f"This micro-expression involves {expected}." in bank.texts
    assert (
        "The hallmark of this micro-expression is lowering the brows." not in bank.texts
    )  # template 6 unused
    again = est.model.text.encode([bank.texts[4]])
    assert torch.allclose(bank.features.reshape(-1, bank.features.shape[-1])[4], again[0], atol=1e-5)


def test_emo_clip_prompts_are_class_names():
    est = MODELS.get("emo-clip").build(num_classes=3, size="tiny", seed=0, device="cpu")
    est.setup_fn(est, _clips())
    bank = est.context["prompt_bank"]
    assert bank.text(1, 0, 0) == "This micro-expression involves positive."
    assert bank.features.shape[:3] == (3, 1, 7)


def test_onset_relative_option_switches_the_tiny_encoder_input_and_refuses_non_booleans():
    spec = MODELS.get("merclip")
    assert spec.build(num_classes=3, size="tiny").model.cfg.encoder.onset_relative
    raw = spec.build(num_classes=3, size="tiny", onset_relative=False)
    assert not raw.model.cfg.encoder.onset_relative
    with pytest.raises(ValueError, match="onset_relative must be true or false, not 'yes'"):
        spec.build(num_classes=3, size="tiny", onset_relative="yes")
