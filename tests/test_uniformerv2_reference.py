"""UniformerV2 / MER-CLIP encoder and emotion head against the reference implementation's numbers."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from mer.merclip.convert import (
    ConversionError,
    convert_head,
    convert_merclip_visual,
    convert_uniformerv2,
    inflate_clip_visual,
)
from mer.merclip.head import EmotionTransformerHead
from mer.merclip.model import MerClipVisual
from mer.merclip.uniformerv2 import UniFormerV2, UniFormerV2Config, uniformerv2_config

TOL = 1e-5


def _tiny_cfg(path) -> UniFormerV2Config:
    return UniFormerV2Config.from_reference(json.loads(path.read_text()))


def test_tiny_encoder_reproduces_reference_output(shared_fixtures):
    d = shared_fixtures / "uniformerv2"
    model = UniFormerV2(_tiny_cfg(d / "uniformerv2_tiny_config.json")).eval()
    state, unused = convert_uniformerv2(load_file(d / "uniformerv2_tiny_state_dict.safetensors"))
    assert unused == []
    model.load_state_dict(state, strict=True)
    io = load_file(d / "uniformerv2_tiny_io.safetensors")
    with torch.no_grad():
        out = model(io["input"])
    assert out.shape == io["output"].shape
    assert torch.allclose(out, io["output"], atol=TOL, rtol=0)


def test_merclip_encoder_form_reproduces_clip_embedding_and_head_tokens(shared_fixtures):
    d = shared_fixtures / "uniformerv2"
    ref_cfg = json.loads((d / "merclip_encoder_tiny_config.json").read_text())
    visual = MerClipVisual(
        UniFormerV2Config.from_reference(ref_cfg), ref_cfg["output_dim"], ref_cfg["cls_output_dim"]
    )
    state, unused = convert_merclip_visual(load_file(d / "merclip_encoder_tiny_state_dict.safetensors"))
    assert unused == []
    visual.load_state_dict(state, strict=True)
    io = load_file(d / "merclip_encoder_tiny_io.safetensors")
    with torch.no_grad():
        _, embedding, tokens = visual.eval()(io["input"])
    assert torch.allclose(embedding, io["clip_embedding"], atol=TOL, rtol=0)
    assert tokens.shape == io["head_tokens"].shape
    assert torch.allclose(tokens, io["head_tokens"], atol=TOL, rtol=0)


def test_emotion_head_reproduces_reference_logits(shared_fixtures):
    d = shared_fixtures / "merclip_head"
    cfg = json.loads((d / "merclip_head_tiny_config.json").read_text())
    head = EmotionTransformerHead(
        cfg["in_channels"],
        cfg["num_classes"],
        cfg["depth"],
        cfg["num_heads"],
        cfg["mlp_mult"],
        cfg["dropout_ratio"],
    )
    state, unused = convert_head(load_file(d / "merclip_head_tiny_state_dict.safetensors"))
    assert unused == []
    head.load_state_dict(state, strict=True)
    io = load_file(d / "merclip_head_tiny_io.safetensors")
    with torch.no_grad():
        logits = head.eval()(io["input"])
    assert torch.allclose(logits, io["logits"], atol=TOL, rtol=0)


def test_converter_covers_the_b16_listing_and_parameter_count(shared_fixtures):
    shapes = json.loads(
        (shared_fixtures / "uniformerv2" / "uniformerv2_b16_t16_state_dict_shapes.json").read_text()
    )
    fake = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    converted, unused = convert_uniformerv2(fake)
    assert unused == []
    with torch.device("meta"):
        model = UniFormerV2(uniformerv2_config("base"))
    ours = model.state_dict()
    assert set(converted) == set(ours), set(converted) ^ set(ours)
    assert all(tuple(converted[k].shape) == tuple(ours[k].shape) for k in ours)
    n_params = sum(p.numel() for p in model.parameters())
    reference = sum(math.prod(s) for k, s in shapes.items() if "running_" not in k and "num_batches" not in k)
    assert n_params == reference
    assert round(n_params / 1e6, 2) == 162.86


def test_converter_rejects_unknown_keys():
    with pytest.raises(ConversionError, match="transformer.bogus"):
        convert_uniformerv2({"transformer.bogus": torch.zeros(1)})


def test_inflated_clip_patch_embedding_sees_a_static_clip_as_the_image():
    torch.manual_seed(0)
    w2d = torch.randn(8, 3, 4, 4)
    state = inflate_clip_visual({"conv1.weight": w2d, "class_embedding": torch.zeros(8)})
    assert set(state) == {"patch_embed.weight", "cls_token"}
    w3d = state["patch_embed.weight"]
    assert w3d.shape == (8, 3, 3, 4, 4)
    assert torch.equal(w3d[:, :, 1], w2d) and not w3d[:, :, 0].any() and not w3d[:, :, 2].any()
    image = torch.randn(1, 3, 8, 8)
    clip = image[:, :, None].expand(1, 3, 4, 8, 8)
    out3d = torch.nn.functional.conv3d(clip, w3d, stride=(2, 4, 4), padding=(1, 0, 0))
    out2d = torch.nn.functional.conv2d(image, w2d, stride=4)
    assert torch.allclose(out3d[:, :, 0], out2d, atol=1e-5) and torch.allclose(
        out3d[:, :, 1], out2d, atol=1e-5
    )


def test_onset_relative_input_sees_only_motion():
    """``tiny`` reads clips relative to their onset frame: adding any static image to every frame (a
    different face, lighting) leaves its output unchanged, while the paper's raw-frame encoder (base, and
    tiny with the switch off) sees the change; the reference configuration stays raw."""
    assert uniformerv2_config("tiny").onset_relative and not uniformerv2_config("base").onset_relative
    torch.manual_seed(0)
    clip = torch.randn(2, 3, 8, 48, 48)
    static = torch.randn(2, 3, 1, 48, 48)  # the same image added to every frame
    for relative in (True, False):
        torch.manual_seed(1)
        enc = UniFormerV2(uniformerv2_config("tiny", onset_relative=relative)).eval()
        with torch.no_grad():
            torch.nn.init.normal_(enc.balance)  # the fused feature mixes query and frame tokens
            a, pa = enc.forward_features(clip)
            b, pb = enc.forward_features(clip + static)
        same = torch.allclose(a, b, atol=1e-4) and torch.allclose(pa, pb, atol=1e-4)
        assert same == relative, relative


def test_reference_configs_read_raw_frames(shared_fixtures):
    cfg = _tiny_cfg(shared_fixtures / "uniformerv2" / "uniformerv2_tiny_config.json")
    assert not cfg.onset_relative
