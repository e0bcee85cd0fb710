"""AU regions on the ViT patch grid (SPEC B.1: UNKNOWN in the paper; this is the reconstruction's choice).

The paper's regions come from facial landmarks (assumed JAA-Net / EAC-Net style). mer's prepared clips
are face crops with no landmarks at training time, so each AU gets a generous box (or two, one per side)
in normalised crop coordinates ``(x0, y0, x1, y1)`` ∈ [0, 1], wide enough to hold the muscle's movement
both on aligned real crops (brows at ~0.25, mouth at ~0.75 of the height) and on SynthME's smaller faces
(brows ~0.37, mouth ~0.70). A patch belongs to a region when its centre lies inside one of the boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Box = tuple[float, float, float, float]

_BROWS = (0.15, 0.48)
_MOUTH = (0.55, 0.9)
AU_REGIONS: dict[int, tuple[Box, ...]] = {
    1: ((0.3, _BROWS[0], 0.7, _BROWS[1]),),  # inner brow raiser: the inner ends of both brows
    2: ((0.1, _BROWS[0], 0.45, _BROWS[1]), (0.55, _BROWS[0], 0.9, _BROWS[1])),  # outer ends, per side
    4: ((0.2, 0.15, 0.8, 0.5),),  # brow lowerer: both brows and the glabella
    5: ((0.15, 0.28, 0.85, 0.52),),  # upper lid raiser
    6: ((0.1, 0.38, 0.9, 0.68),),  # cheek raiser: lower lids and cheeks
    7: ((0.15, 0.3, 0.85, 0.55),),  # lid tightener: the eyes
    9: ((0.3, 0.35, 0.7, 0.65),),  # nose wrinkler
    10: ((0.25, 0.5, 0.75, 0.78),),  # upper lip raiser
    12: ((0.1, _MOUTH[0], 0.9, _MOUTH[1]),),  # lip corners (12, 14, 15, 20)
    14: ((0.1, _MOUTH[0], 0.9, _MOUTH[1]),),
    15: ((0.1, _MOUTH[0], 0.9, _MOUTH[1]),),
    20: ((0.1, _MOUTH[0], 0.9, _MOUTH[1]),),
    17: ((0.25, 0.65, 0.75, 1.0),),  # chin raiser: lower lip and chin
}
#: Lip AUs without their own entry (16, 18, 22–28) share the mouth box; any other AU sees the whole face.
MOUTH_BOX: Box = (0.25, _MOUTH[0], 0.75, 0.92)
MOUTH_AUS = frozenset({16, 18, 22, 23, 24, 25, 26, 27, 28})
FACE_BOX: Box = (0.0, 0.0, 1.0, 1.0)


def au_boxes(au: int) -> tuple[Box, ...]:
    """The boxes of ``au`` (mouth box for lip AUs, the whole face for an AU with no entry)."""
    if au in AU_REGIONS:
        return AU_REGIONS[au]
    return (MOUTH_BOX,) if au in MOUTH_AUS else (FACE_BOX,)


def region_masks(aus: Sequence[int], grid: tuple[int, int]) -> torch.Tensor:
    """``[K, gh * gw]`` bool: which patches (row-major) lie in each AU's region.

    A box smaller than a patch still gets the patch nearest its centre, so no AU is left without tokens.
    """
    gh, gw = grid
    ys = (torch.arange(gh, dtype=torch.float32) + 0.5) / gh
    xs = (torch.arange(gw, dtype=torch.float32) + 0.5) / gw
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    masks = torch.zeros(len(aus), gh * gw, dtype=torch.bool)
    for k, au in enumerate(aus):
        m = torch.zeros(gh, gw, dtype=torch.bool)
        for x0, y0, x1, y1 in au_boxes(au):
            inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
            if not inside.any():
                cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
                inside[min(gh - 1, int(cy * gh)), min(gw - 1, int(cx * gw))] = True
            m |= inside
        masks[k] = m.flatten()
    return masks
