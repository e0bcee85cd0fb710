"""The frozen text side (SPEC A.3, Eq. 7) and the per-run cache of prompt features.

mer's default text tower is open_clip ``ViT-B-16`` / ``openai`` (frozen, projection included), loaded
only from the local Hugging Face cache (``-o text=clip``). ``-o text=viclip`` uses the authors' choice,
the ViCLIP-B text tower, from a local ``ViCLIP-B_InternVid-FLT-10M.pth`` (``-o viclip_path=FILE``),
converted to the same open_clip module (:mod:`mer.zoo.convert`). The ``tiny`` size builds a small
random open_clip text tower in code (CPU tests and the embedded demo). Because the tower is frozen, the
feature of every (AU combination, template) prompt is computed once per run and looked up during
training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mer.errors import HubError

CLIP_HF_REPO = "timm/vit_base_patch16_clip_224.openai"
CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class MissingWeightsError(HubError, FileNotFoundError):
    """Pretrained weights that are not in the local cache (nothing is downloaded at run time)."""


def _clip_cache_file() -> str:
    from huggingface_hub import try_to_load_from_cache

    for name in CLIP_FILES:
        path = try_to_load_from_cache(CLIP_HF_REPO, name)
        if isinstance(path, str):
            return path
    raise MissingWeightsError(
        f"CLIP ViT-B/16 (openai) weights are not in the Hugging Face cache ({CLIP_HF_REPO}). "
        f"Fetch them once with `mer zoo pull clip-vit-b16` (or `hf download {CLIP_HF_REPO}`), "
        "or use size 'tiny'."
    )


def load_clip_b16() -> nn.Module:
    """open_clip ``ViT-B-16`` with the OpenAI weights from the local HF cache (QuickGELU, as trained).

    Raises:
        MissingWeightsError: the cache lacks the weights; the message names the command that fetches them.
    """
    import open_clip

    path = _clip_cache_file()
    model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


TEXT_TOWERS = ("clip", "viclip")
VICLIP_FILE = "ViCLIP-B_InternVid-FLT-10M.pth"


def load_viclip_text(path: str | None) -> tuple[nn.Module, list[str]]:
    """The ViCLIP-B text tower (InternVid-FLT-10M) as an open_clip ``ViT-B-16`` text tower.

    Args:
        path: The local ViCLIP-B checkpoint (the whole model, or its ``text_encoder.*`` part).

    Returns:
        ``(clip, notes)``: an open_clip CLIP holding the ViCLIP text weights, and what the conversion did
        (its 32 positions zero-padded to 77, as the authors do; the video tower's tensors not used).

    Raises:
        MissingWeightsError: no path, or no file there; the message names the file to download.
        mer.merclip.convert.ConversionError: a text-tower tensor missing or of another shape (named).
    """
    from pathlib import Path

    import open_clip

    from mer.merclip.convert import ConversionError
    from mer.zoo.convert import convert_checkpoint

    where = (
        f"download {VICLIP_FILE} (the ViCLIP-B weights of OpenGVLab's InternVid release) and pass "
        "-o viclip_path=/path/to/it; or use the default -o text=clip"
    )
    if not path:
        raise MissingWeightsError(f"-o text=viclip needs the ViCLIP-B text tower from a local file: {where}")
    if not Path(path).is_file():
        raise MissingWeightsError(f"ViCLIP-B weights not found at {path}: {where}")
    report = convert_checkpoint(path, "viclip-text")
    if report.missing or report.mismatched:
        raise ConversionError(
            f"{path}: not a ViCLIP-B text tower: missing {report.missing[:6]}, "
            f"other shape {report.mismatched[:6]}"
        )
    clip = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    clip.load_state_dict(report.converted, strict=False)
    notes = [
        *report.notes,
        f"{len(report.converted)} text-tower tensors; {len(report.unused)} others not used",
    ]
    return clip, notes


def tiny_clip(embed_dim: int = 32, width: int = 64, layers: int = 2, heads: int = 2) -> nn.Module:
    """A small random open_clip CLIP (real BPE vocabulary, 77 tokens) for CPU runs."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    text = CLIPTextCfg(context_length=77, vocab_size=49408, width=width, heads=heads, layers=layers)
    vision = CLIPVisionCfg(layers=1, width=32, head_width=32, patch_size=16, image_size=32)
    return CLIP(embed_dim=embed_dim, vision_cfg=vision, text_cfg=text, quick_gelu=True)


class FrozenTextTower(nn.Module):
    """An open_clip text tower with its projection, frozen.

    Args:
        clip: An open_clip ``CLIP`` (its image tower is dropped) or a model with ``encode_text``.
        tokenizer_name: open_clip tokenizer (CLIP BPE ships inside open_clip, no download).
    """

    def __init__(self, clip: nn.Module, tokenizer_name: str = "ViT-B-16") -> None:
        super().__init__()
        import open_clip

        if hasattr(clip, "visual"):
            clip.visual = None  # only the text side is used; frees the image tower
        self.clip = clip
        self.tokenizer = open_clip.get_tokenizer(tokenizer_name)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenTextTower:
        # Frozen means frozen: dropout/BN never switch to training behaviour.
        return super().train(False)

    @property
    def output_dim(self) -> int:
        proj = getattr(self.clip, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return proj.shape[1]
        return self.clip.encode_text(self.tokenizer(["a"])).shape[-1]

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Projected text features ``[len(texts), D]`` (not normalised), on the tower's device."""
        device = next(self.clip.parameters()).device
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i : i + batch_size])).to(device)
            out.append(self.clip.encode_text(tokens).float())
        return torch.cat(out)


class PromptBank:
    """Cached text features of every (prompt class, variant, template) triple.

    A *prompt class* is an AU combination (or, for Emo-guided CLIP, an emotion); a *variant* is one
    description of it (one, or several shuffled AU orders); templates 1..k fill each variant.

    Args:
        descriptions: Per prompt class, its description variants.
        templates: Template strings with one ``{}``.
        tower: The frozen text tower.
    """

    def __init__(
        self, descriptions: Sequence[Sequence[str]], templates: Sequence[str], tower: FrozenTextTower
    ):
        self.descriptions = [list(d) for d in descriptions]
        self.templates = list(templates)
        self.max_variants = max(len(d) for d in self.descriptions)
        texts: list[str] = []
        for variants in self.descriptions:
            for v in range(self.max_variants):
                desc = variants[v % len(variants)]  # pad by cycling so every class has max_variants
                texts.extend(t.format(desc) for t in self.templates)
        self.texts = texts
        feats = tower.encode(texts)
        self.features = feats.reshape(len(self.descriptions), self.max_variants, len(self.templates), -1)

    def to(self, device: torch.device | str) -> PromptBank:
        self.features = self.features.to(device)
        return self

    def sample(self, classes: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Eq. 6–7: per sample, a random variant and template of its class → features ``[N, D]``."""
        n = classes.shape[0]
        dev = self.features.device
        v = torch.randint(self.max_variants, (n,), generator=generator, device="cpu").to(dev)
        t = torch.randint(len(self.templates), (n,), generator=generator, device="cpu").to(dev)
        return self.features[classes.to(dev), v, t]

    def text(self, cls: int, variant: int = 0, template: int = 0) -> str:
        """The prompt string behind one cached feature."""
        desc = self.descriptions[cls][variant % len(self.descriptions[cls])]
        return self.templates[template].format(desc)
