"""Micro-AU CLIP (reconstruction): regions, PTA, GDA, the losses, the ablations, label-free MER."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from mer.baselines.microau_clip.config import Variant, network_config
from mer.baselines.microau_clip.emotions import class_prototypes, rule_scores, softmax_rows
from mer.baselines.microau_clip.images import make_images
from mer.baselines.microau_clip.losses import cooccurrence_target, gd_loss, miaucl, positive_weights
from mer.baselines.microau_clip.model import MicroAUClip, PatchTokenAttention
from mer.baselines.microau_clip.regions import region_masks
from mer.baselines.microau_clip.registration import AU_VARIANTS
from mer.baselines.microau_clip.towers import build_towers
from mer.registrations import load_all
from mer.zoo.api import MODELS

load_all()
SYNTH = (1, 2, 4, 6, 7, 9, 12, 17)


def test_region_masks_on_an_8x8_grid():
    masks = region_masks((1, 2, 17, 43), (8, 8)).reshape(4, 8, 8)
    # Patch centres are (i + 0.5) / 8. AU1 box x 0.3–0.7, y 0.15–0.48 → rows 1–3, columns 2–5.
    expect = torch.zeros(8, 8, dtype=torch.bool)
    expect[1:4, 2:6] = True
    assert torch.equal(masks[0], expect)
    # AU2: two boxes (x 0.1–0.45 and 0.55–0.9) → columns 1–3 (0.1875–0.4375) and 4–6 (0.5625–0.8125);
    # column 7 (0.9375) is out, rows 1–3.
    assert masks[1][2].nonzero().flatten().tolist() == [1, 2, 3, 4, 5, 6]
    assert region_masks((2,), (16, 16)).reshape(16, 16)[4, 7:9].tolist() == [False, False]  # 0.47, 0.53
    assert masks[1][0].sum() == 0 and masks[1][4].sum() == 0
    # AU17 (chin): rows 5–7 (y ≥ 0.65), columns 2–5; AU43 has no entry: the whole face.
    assert masks[2].any(1).nonzero().flatten().tolist() == [5, 6, 7]
    assert masks[3].all()


def test_pta_ignores_patches_outside_the_region():
    torch.manual_seed(0)
    masks = region_masks((1, 12), (4, 4))
    pta = PatchTokenAttention(8, 16, masks)
    x = torch.randn(2, 16, 8, requires_grad=True)
    au, attn = pta(x)
    assert au.shape == (2, 2, 16) and attn.shape == (2, 2, 16)
    assert torch.all(attn[:, ~masks] == 0) and torch.allclose(attn.sum(-1), torch.ones(2, 2))
    # Gradient of the AU1 token w.r.t. the patches: nonzero only inside AU1's region.
    au[:, 0].sum().backward()
    touched = x.grad.abs().sum((0, 2)) > 0
    assert torch.equal(touched, masks[0])


def _tiny(variant: Variant, aus=SYNTH) -> MicroAUClip:
    torch.manual_seed(0)
    cfg = network_config("tiny", aus, variant)
    visual, _ = build_towers("tiny", cfg, need_text=False)
    model = MicroAUClip(cfg, visual)
    if variant.miaucl:
        model.set_anchors(torch.randn(len(aus), cfg.embed_dim), torch.randn(len(aus), cfg.embed_dim))
    return model


@pytest.mark.parametrize("name", list(AU_VARIANTS))
def test_variants_forward_backward(name):
    variant = AU_VARIANTS[name][0]
    model = _tiny(variant)
    image = torch.randn(3, 6 if variant.input == "pair" else 3, 64, 64)
    out = model(image)
    assert out["logits"].shape == (3, 8) and torch.isfinite(out["logits"]).all()
    assert ("gda_attn" in out) == variant.gda
    assert ("pta_attn" in out) == variant.pta
    assert ("text_logits" in out) == variant.miaucl
    loss = out["logits"].sum() + (out["gda_attn"].sum() if variant.gda else 0)
    loss.backward()
    grads = {n: p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()}
    assert grads["visual.conv1.weight"]
    if variant.pta:
        assert grads["pta.query"] and grads["pta.key.weight"]
    if variant.miaucl:
        assert grads["au_proj.weight"] and grads["logit_scale.value"]
    else:
        assert grads["cls_weight"]


def test_pair_input_and_zero_initialised_difference_channels():
    frames = torch.randint(0, 255, (2, 3, 64, 64, 3), dtype=torch.uint8)
    frames[:, 1] = frames[:, 0]  # apex == onset: no motion
    cfg = network_config("tiny", SYNTH, Variant())
    x = make_images(frames, cfg)
    assert x.shape == (2, 6, 64, 64) and torch.all(x[:, 3:] == 0)
    # A flipped batch is the mirror image, labels unchanged (sides are merged).
    flipped = make_images(frames, cfg, torch.tensor([True, False]))
    assert torch.equal(flipped[0], x[0].flip(-1)) and torch.equal(flipped[1], x[1])
    visual, _ = build_towers("tiny", cfg, need_text=False)
    model = MicroAUClip(cfg, visual, pretrained_visual=True)  # the base path: starts as CLIP on the apex
    assert model.visual.conv1.weight.shape[1] == 6 and torch.all(model.visual.conv1.weight[:, 3:] == 0)


def test_cooccurrence_target_and_gdloss_by_hand():
    y = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    t = cooccurrence_target(y)
    # AU a: P(a|a)=1, P(b|a)=1/2 → [2/3, 1/3, 0]; AU b: P(a|b)=1, P(b|b)=1 → [1/2, 1/2, 0]; AU c: uniform.
    assert torch.allclose(t, torch.tensor([[2 / 3, 1 / 3, 0], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]]))
    assert gd_loss(t.expand(4, 3, 3), t).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((1, 3, 3), 1 / 3)
    # KL(t ‖ uniform) per row: row a = 2/3 ln 2 + 1/3 ln 1 ; row b = ln(3/2) ; row c = 0.
    expect = (2 / 3 * math.log(2) + 1 / 3 * math.log(1) + math.log(1.5)) / 3
    assert gd_loss(uniform, t).item() == pytest.approx(expect, rel=1e-5)
    assert positive_weights(y).tolist() == [1.0, 2.0, 3.0]  # neg/pos clipped to [1, 10]; none → 3/1


def test_miaucl_by_hand():
    n, k = 4, 2
    y = torch.tensor([[1, 0], [0, 0], [1, 1], [0, 1]])
    # Equal similarities: v2t = ln 2; each prompt's softmax over 4 samples gives ln 4 per positive.
    assert miaucl(torch.zeros(n, k, 2), y).item() == pytest.approx(0.5 * (math.log(2) + math.log(4)))
    # Perfect, confident alignment drives it toward its floor: t2v keeps ln(#positives) = ln 2.
    logits = torch.stack([(1 - y) * 50.0, y * 50.0], -1).float()
    assert miaucl(logits, y).item() == pytest.approx(0.5 * math.log(2), abs=1e-4)


def test_rule_scores_map_aus_to_emotions():
    classes = ("negative", "positive", "surprise")
    p = np.full((4, 8), 0.05)
    p[0, SYNTH.index(12)] = p[0, SYNTH.index(6)] = 0.95  # 6 + 12 → happiness → positive
    p[1, SYNTH.index(1)] = p[1, SYNTH.index(2)] = 0.9  # 1 + 2 → surprise
    p[2, SYNTH.index(4)] = p[2, SYNTH.index(7)] = 0.9  # 4 + 7 → anger → negative
    p[3, SYNTH.index(9)] = 0.8  # 9 → disgust → negative
    probs = softmax_rows(rule_scores(p, SYNTH, classes))
    assert probs.argmax(1).tolist() == [1, 2, 0, 0]
    assert np.allclose(probs.sum(1), 1)
    # Log-likelihood by hand: row 1 under surprise's (1, 2): 2 ln 0.9 + 6 ln 0.95.
    assert rule_scores(p, SYNTH, classes)[1, 2] == pytest.approx(2 * math.log(0.9) + 6 * math.log(0.95))
    # With "others" in the classes, a face with no AU goes there.
    five = ("disgust", "happiness", "others", "repression", "surprise")
    assert rule_scores(np.full((1, 8), 0.05), SYNTH, five).argmax() == 2
    # SAMM's 4 AUs cannot express repression: no prototype left, never predicted.
    assert class_prototypes(("repression", "happiness"), (2, 4, 7, 12)) == [[], [(12,)]]
    assert softmax_rows(np.array([[-np.inf, -np.inf]])).tolist() == [[0.5, 0.5]]
    with pytest.raises(ValueError, match="no AU prototype"):
        class_prototypes(("boredom",), SYNTH)


def test_registered_models_are_marked_reconstructions():
    for name in [*AU_VARIANTS, "microau-clip-labelfree", "microau-clip-labelfree-prompts"]:
        spec = MODELS.get(name)
        assert spec.reconstruction and "tiny" in spec.sizes
    assert MODELS.get("microau-clip").task == "au"
    assert MODELS.get("microau-clip-labelfree").task == "emotion"
    assert not MODELS.get("au-majority").reconstruction


def test_base_size_without_weights_names_the_download(monkeypatch):
    from mer.merclip.text import MissingWeightsError

    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hf-home/hub")
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", "/nonexistent-hf-home/hub")
    with pytest.raises(MissingWeightsError, match="mer zoo pull clip-vit-b16"):
        MODELS.get("microau-clip").build(num_classes=8, size="base", aus=SYNTH)


def test_variant_switch_names():
    assert replace(Variant(), gda=False) == AU_VARIANTS["microau-clip-no-gda"][0]
    assert (
        not AU_VARIANTS["microau-clip-no-gdloss"][0].gdloss and AU_VARIANTS["microau-clip-no-gdloss"][0].gda
    )
