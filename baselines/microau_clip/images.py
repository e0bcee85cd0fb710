"""Micro-AU CLIP input: key frames → the normalised apex (and onset→apex difference) image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mer.baselines.microau_clip.model import MicroAUClipConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def make_images(
    frames: torch.Tensor, cfg: MicroAUClipConfig, flip: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 key frames ``[N, T, H, W, 3]`` → the network input ``[N, 3 or 6, S, S]``.

    The apex (index ``T // 2``) normalised with CLIP's mean / std, and for the pair input the
    ``diff_gain``-scaled onset→apex difference in the same units.
    """
    t = frames.shape[1]
    x = frames[:, [0, t // 2]].permute(0, 1, 4, 2, 3).float().div_(255)  # [N, 2, 3, H, W]
    n = x.shape[0]
    if x.shape[-1] != cfg.image_size or x.shape[-2] != cfg.image_size:
        x = F.interpolate(x.flatten(0, 1), size=(cfg.image_size,) * 2, mode="bilinear", antialias=True)
        x = x.reshape(n, 2, 3, cfg.image_size, cfg.image_size)
    if flip is not None:  # AU targets have their sides merged, so a mirrored face keeps its labels
        x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
    mean = torch.tensor(CLIP_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(CLIP_STD, device=x.device)[:, None, None]
    apex = (x[:, 1] - mean) / std
    if cfg.input == "apex":
        return apex
    return torch.cat([apex, cfg.diff_gain * (x[:, 1] - x[:, 0]) / std], dim=1)
