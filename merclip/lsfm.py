"""LocalStaticFaceMix (SPEC A.2, Eq. 1, Algorithm 1) as one batched tensor operation.

For a sequence chosen with probability ``p``, one facial region (forehead, chin, left or right cheek)
of *every* frame is blended with the same region of another sequence's onset frame:
``x̃ᵗ = (1 − M) ⊙ xᵗ + M ⊙ (λ xᵗ + (1 − λ) x_j¹)``. The label (and AU prompt) stays the sample's own.
"""

from __future__ import annotations

import torch

REGIONS: tuple[str, ...] = ("forehead", "chin", "left_cheek", "right_cheek")


def region_masks(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The four region masks ``[4, H, W]`` (bool), in :data:`REGIONS` order, with integer division:
    forehead rows [0, H/4), chin rows [3H/4, H), cheeks rows [H/4, 3H/4) split at column W/2 of the
    image."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    top, bottom, mid = height // 4, 3 * height // 4, width // 2
    middle = (rows >= top) & (rows < bottom)
    full = torch.ones(height, width, dtype=torch.bool, device=device)
    return torch.stack(
        [
            (rows < top) & full,
            (rows >= bottom) & full,
            middle & (cols < mid),
            middle & (cols >= mid),
        ]
    )


def lsfm_blend(clips: torch.Tensor, onsets: torch.Tensor, masks: torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. 1 on ``clips [N, C, T, H, W]`` with partner onset frames ``onsets [N, C, H, W]`` and per-clip
    masks ``masks [N, H, W]`` (all False leaves a clip unchanged)."""
    m = masks[:, None, None].to(clips.dtype)
    mixed = lam * clips + (1 - lam) * onsets[:, :, None]
    return (1 - m) * clips + m * mixed


def local_static_face_mix(
    clips: torch.Tensor,
    lam: float = 0.5,
    p: float = 0.5,
    exclude_self: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Algorithm 1 on a batch ``[N, C, T, H, W]`` (frame 0 is the onset), on the batch's device.

    Args:
        clips: The (normalised) batch.
        lam: λ, the weight kept on the clip's own pixels (0.5; the UniformerV2-only config uses 0.3).
        p: Probability that a sequence is mixed.
        exclude_self: Never pick a sequence as its own partner (the authors' code allows it).
        generator: CPU generator for the random choices.

    Returns:
        ``(mixed, info)``; ``info`` holds ``applied [N]``, ``partner [N]``, ``region [N]`` (index into
        :data:`REGIONS`).
    """
    n, _, _, h, w = clips.shape
    applied = torch.rand(n, generator=generator) < p
    if exclude_self and n > 1:
        partner = (torch.arange(n) + torch.randint(1, n, (n,), generator=generator)) % n
    else:
        partner = torch.randint(n, (n,), generator=generator)
    region = torch.randint(len(REGIONS), (n,), generator=generator)
    dev = clips.device
    masks = region_masks(h, w, dev)[region.to(dev)] & applied.to(dev)[:, None, None]
    onsets = clips[partner.to(dev), :, 0]
    out = lsfm_blend(clips, onsets, masks, lam)
    return out, {"applied": applied, "partner": partner, "region": region}
