"""Each MER-CLIP equation pinned against a hand computation (SPEC A.2–A.4)."""

from __future__ import annotations

import math

import pytest
import torch

from mer.merclip.losses import LogitScale, clip_loss, focal_loss, progressive_weights
from mer.merclip.lsfm import REGIONS, local_static_face_mix, lsfm_blend, region_masks
from mer.merclip.prompts import TEMPLATES, PromptConfig, describe_aus, descriptions_for, fill_templates
from mer.protocols.sample import AU


# --- LocalStaticFaceMix -------------------------------------------------------------------------
def test_region_masks_224():
    m = region_masks(224, 224)
    assert REGIONS == ("forehead", "chin", "left_cheek", "right_cheek")
    rows = [torch.nonzero(r.any(1)).flatten() for r in m]
    cols = [torch.nonzero(r.any(0)).flatten() for r in m]
    assert (rows[0].min(), rows[0].max(), cols[0].min(), cols[0].max()) == (0, 55, 0, 223)
    assert (rows[1].min(), rows[1].max(), cols[1].min(), cols[1].max()) == (168, 223, 0, 223)
    assert (rows[2].min(), rows[2].max(), cols[2].min(), cols[2].max()) == (56, 167, 0, 111)
    assert (rows[3].min(), rows[3].max(), cols[3].min(), cols[3].max()) == (56, 167, 112, 223)
    assert m.sum(0).eq(1).all()  # the four regions tile the frame
    assert [int(r.sum()) for r in m] == [56 * 224, 56 * 224, 112 * 112, 112 * 112]


def test_region_masks_odd_size_use_integer_division():
    m = region_masks(10, 7)  # H/4 = 2, 3H/4 = 7, W/2 = 3
    assert m[0, :2].all() and not m[0, 2:].any()
    assert m[1, 7:].all() and not m[1, :7].any()
    assert m[2, 2:7, :3].all() and not m[2, 2:7, 3:].any()


def test_lsfm_blend_equation_by_hand():
    clips = torch.full((1, 1, 2, 4, 4), 2.0)
    clips[0, 0, 1] = 4.0  # frame 1 differs from frame 0
    onset = torch.full((1, 1, 4, 4), 10.0)
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 0] = True  # top row
    out = lsfm_blend(clips, onset, mask, 0.5)
    assert torch.equal(out[0, 0, 0, 0], torch.full((4,), 6.0))  # 0.5·2 + 0.5·10
    assert torch.equal(out[0, 0, 1, 0], torch.full((4,), 7.0))  # 0.5·4 + 0.5·10
    assert torch.equal(out[0, 0, 0, 1:], clips[0, 0, 0, 1:]) and torch.equal(
        out[0, 0, 1, 1:], clips[0, 0, 1, 1:]
    )
    out3 = lsfm_blend(clips, onset, mask, 0.3)
    assert torch.allclose(out3[0, 0, 0, 0], torch.full((4,), 0.3 * 2 + 0.7 * 10))


def test_local_static_face_mix_uses_partner_onset_on_every_frame():
    g = torch.Generator().manual_seed(3)
    clips = torch.randn(6, 3, 4, 8, 8)
    out, info = local_static_face_mix(clips, lam=0.5, p=1.0, exclude_self=True, generator=g)
    assert info["applied"].all()
    masks = region_masks(8, 8)
    for i in range(6):
        j, r = int(info["partner"][i]), int(info["region"][i])
        assert j != i
        m = masks[r]
        for t in range(4):
            expect = 0.5 * clips[i, :, t] + 0.5 * clips[j, :, 0]
            assert torch.allclose(out[i, :, t][:, m], expect[:, m])
            assert torch.equal(out[i, :, t][:, ~m], clips[i, :, t][:, ~m])
    none, info0 = local_static_face_mix(clips, p=0.0, generator=g)
    assert not info0["applied"].any() and torch.equal(none, clips)


# --- Prompts --------------------------------------------------------------------------------------
def test_prompt_ascending_order_and_and_join():
    text = describe_aus([AU(12), AU(6)], join="and")
    assert text == "a combination of raising the cheeks and pulling the corners of the lips"
    three = describe_aus([AU(5), AU(1), AU(2)], join="and")
    assert three == (
        "a combination of raising the inner part of the brows, raising the outer part of the brows "
        "and raising the upper lids"
    )
    assert describe_aus([AU(5), AU(1), AU(2)], join="comma") == (
        "a combination of raising the inner part of the brows, raising the outer part of the brows, "
        "raising the upper lids"
    )


def test_prompt_single_laterality_uncertain_alternatives():
    assert describe_aus([AU(4)]) == "lowering the brows"
    assert describe_aus([AU(12, "L")]) == "pulling the left corner of the lips"
    assert describe_aus([AU(14, "R")]) == "creating the right dimple"
    assert describe_aus([AU(9, "L")]) == "wrinkling the left side of the nose"
    assert describe_aus([AU(7, "R")]) == "tightening the right lid"
    assert describe_aus([AU(1, "L")]) == "raising the inner part of the left brow"
    assert describe_aus([AU(24, uncertain=True)]) == "pressing the lips might be present"
    alt = AU(12, "R", alternatives=(AU(14, "R"),))
    assert describe_aus([alt]) == "pulling the right corner of the lips or creating the right dimple"
    mixed = describe_aus([AU(6, uncertain=True), AU(4), AU(43)], join="comma")
    assert (
        mixed == "a combination of lowering the brows, raising the cheeks might be present, closing the eyes"
    )


def test_facs_prompts_and_templates():
    assert describe_aus([AU(12), AU(1)], join="comma", style="facs") == (
        "a combination of Inner Brow Raiser, Lip Corner Puller"
    )
    assert describe_aus([AU(12, "L")], style="facs") == "Left Lip Corner Puller"
    assert len(TEMPLATES) == 10
    filled = fill_templates("raising the chin", 7)
    assert len(filled) == 7
    assert filled[0] == "This micro-expression involves raising the chin."
    assert filled[6] == "An identifiable trait of this micro-expression is raising the chin."
    assert fill_templates("x", 10)[-1] == "This micro-expression can be recognized through x."


def test_shuffled_order_variants_keep_the_phrases():
    aus = (AU(1), AU(2), AU(4), AU(12))
    variants = descriptions_for(aus, "casme2", PromptConfig(shuffle=True, shuffles=6), seed=0)
    fixed = descriptions_for(aus, "casme2", PromptConfig())
    assert len(fixed) == 1 and len(variants) == 6
    assert len(set(variants)) > 1
    strip = lambda s: sorted(s.removeprefix("a combination of ").replace(" and ", ", ").split(", "))  # noqa: E731
    assert all(strip(v) == strip(fixed[0]) for v in variants)
    with pytest.raises(ValueError):
        PromptConfig(templates=11)


# --- Losses ---------------------------------------------------------------------------------------
def test_clip_loss_by_hand():
    v = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # normalised: e1, e2
    t = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # normalised: (0.6, 0.8), e2
    s = 1 / 0.07
    sim = [[0.6, 0.0], [0.8, 1.0]]  # sim[i][j] = cos(v_i, t_j)

    def ce(row, k):
        return -(row[k] * s - math.log(sum(math.exp(x * s) for x in row)))

    l_v2t = (ce(sim[0], 0) + ce(sim[1], 1)) / 2
    cols = [[sim[0][0], sim[1][0]], [sim[0][1], sim[1][1]]]
    l_t2v = (ce(cols[0], 0) + ce(cols[1], 1)) / 2
    expected = 0.5 * (l_v2t + l_t2v)
    got = clip_loss(v, t, torch.tensor(s))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_logit_scale_starts_at_007_and_can_be_fixed():
    scale = LogitScale()
    assert scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert isinstance(scale.value, torch.nn.Parameter)
    assert not any(True for _ in LogitScale(learnable=False).parameters())


def test_focal_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    p0 = math.exp(2) / (math.exp(2) + 2)
    p1 = 1 / 3
    expected = (-((1 - p0) ** 2) * math.log(p0) - ((1 - p1) ** 2) * math.log(p1)) / 2
    assert focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert focal_loss(logits, target, gamma=0.0).item() == pytest.approx(ce.item(), rel=1e-6)


def test_progressive_weights_at_0_27_54():
    assert progressive_weights(0) == (2.0, 0.0)
    w, c = progressive_weights(27)
    assert w == pytest.approx(2 - 27 / 55) and c == pytest.approx(27 / 55)
    w, c = progressive_weights(54)
    assert w == pytest.approx(1.0182, abs=1e-4) and c == pytest.approx(0.9818, abs=1e-4)
    assert w + c == pytest.approx(2.0)
    assert progressive_weights(0, w0=1.5) == (1.5, 0.5)
