"""Micro-AU CLIP towers and prompts: the image / text towers per size, the AU anchor prompts and the
AU-combination description.

``base`` loads CLIP ViT-B/16 (image and text towers) from the local Hugging Face cache only; ``tiny``
builds a small open_clip ViT image tower (64 px, patch 8) and a small text tower with random weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mer.baselines.microau_clip.config import ABSENT_TEMPLATES, PRESENT_TEMPLATES
from mer.baselines.microau_clip.model import MicroAUClipConfig
from mer.merclip.prompts import ACTION_PHRASES, describe_aus, join_style
from mer.merclip.text import FrozenTextTower, load_clip_b16, tiny_clip
from mer.protocols.sample import AU


def build_towers(
    size: str, cfg: MicroAUClipConfig, need_text: bool
) -> tuple[nn.Module, FrozenTextTower | None]:
    """The image tower and (when needed) the frozen text tower at ``size``.

    Raises:
        MissingWeightsError: ``base`` without CLIP ViT-B/16 in the local Hugging Face cache (the
            message names the download command).
    """
    if size == "base":
        clip = load_clip_b16()
        visual = clip.visual
        return visual, FrozenTextTower(clip) if need_text else None
    from open_clip.transformer import VisionTransformer

    visual = VisionTransformer(
        image_size=cfg.image_size, patch_size=cfg.patch_size, width=cfg.width, layers=cfg.layers,
        heads=cfg.heads, mlp_ratio=2.0, output_dim=cfg.embed_dim,
    )  # fmt: skip
    return visual, FrozenTextTower(tiny_clip(embed_dim=cfg.embed_dim)) if need_text else None


def au_anchor_features(tower: FrozenTextTower, aus: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per AU, the absent / present prompt features ``[K, E]`` (template ensemble, centred).

    Each is the mean of the normalised features of its templates; the mean over all 2K anchors is then
    subtracted, because CLIP-style text features share a large common direction that would make the
    "present" and "absent" prompts of an AU nearly identical.
    """

    def ensemble(templates: tuple[str, ...], au: int) -> torch.Tensor:
        phrase = ACTION_PHRASES.get(au, f"action unit {au}")
        return F.normalize(tower.encode([t.format(phrase) for t in templates]).float(), dim=-1).mean(0)

    absent = torch.stack([ensemble(ABSENT_TEMPLATES, a) for a in aus])
    present = torch.stack([ensemble(PRESENT_TEMPLATES, a) for a in aus])
    centre = torch.cat([absent, present]).mean(0, keepdim=True)
    return absent - centre, present - centre


def combination_text(sample_aus: set[int], vocabulary: tuple[int, ...], dataset: str) -> str:
    """The AU-combination description of a sample over the vocabulary (MER-CLIP's Eq. 5 rule)."""
    return describe_aus([AU(a) for a in sorted(sample_aus & set(vocabulary))], join=join_style(dataset))
