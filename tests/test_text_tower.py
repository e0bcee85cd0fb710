"""The selectable text tower: ``-o text=clip`` (default) or ``-o text=viclip`` from a local ViCLIP-B file
(the authors' choice), refused with what to download when the file is missing, recorded with the run."""

from __future__ import annotations

import json

import pytest
import torch

from mer.errors import OptionValueError
from mer.merclip.text import VICLIP_FILE, MissingWeightsError, load_viclip_text
from mer.registrations import load_all
from mer.zoo.api import MODELS


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"text": "viclip", "size": "tiny"}, OptionValueError, r"text=viclip: size tiny uses a small random"),
        ({"text": "viclip"}, MissingWeightsError, rf"needs the ViCLIP-B text tower .*download {VICLIP_FILE}"),
        (
            {"text": "viclip", "viclip_path": "/no/such/ViCLIP.pth"},
            MissingWeightsError,
            rf"not found at /no/such/ViCLIP\.pth: download {VICLIP_FILE}.*-o viclip_path=",
        ),
        ({"text": "bert"}, OptionValueError, r"option text must be one of clip, viclip, not 'bert'"),
        ({"viclip_path": "/x.pth"}, OptionValueError, r"viclip_path is only used with -o text=viclip"),
    ],
)
def test_text_option_errors_name_what_is_wrong(options, error, match):
    load_all()
    size = options.pop("size", "base" if options.get("text") == "viclip" else "tiny")
    with pytest.raises(error, match=match):
        MODELS.get("merclip").build(num_classes=3, size=size, init="random", **options)


@pytest.mark.slow
def test_viclip_file_becomes_the_frozen_text_tower(tmp_path):
    """A ViCLIP-B checkpoint (``{"model": {"text_encoder.*", "vision_encoder.*"}}``, 32 positions) is read
    into an open_clip ViT-B-16 text tower: every text tensor equal, positions 32..76 zero."""
    import open_clip

    src = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    text = {
        k: v.clone()
        for k, v in src.state_dict().items()
        if not k.startswith("visual.") and k not in ("logit_scale", "attn_mask")
    }
    text["positional_embedding"] = text["positional_embedding"][:32].clone()
    path = tmp_path / VICLIP_FILE
    torch.save(
        {
            "model": {
                **{f"text_encoder.{k}": v for k, v in text.items()},
                "vision_encoder.conv1.weight": torch.zeros(1),
            }
        },
        path,
    )
    clip, notes = load_viclip_text(str(path))
    got = clip.state_dict()
    for key, value in text.items():
        if key == "positional_embedding":
            assert torch.equal(got[key][:32], value) and not got[key][32:].any()
        else:
            assert torch.equal(got[key], value), key
    assert any("32 positions zero-padded to 77" in n for n in notes)
    assert json.dumps(notes)  # JSON-ready for the run record
