"""Face cropping applied during preparation.

An aligner looks at a clip's onset frame and returns one crop box ``(x0, y0, x1, y1)`` applied to
every frame of the clip (so the crop itself never moves and cannot fake motion), or None when it
finds no face; the preparation's ``on_align_failure`` policy then decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mer.registry import Registry

Box = tuple[int, int, int, int]
AlignFn = Callable[[np.ndarray], "Box | None"]
ALIGNERS: Registry[AlignFn] = Registry("aligner")


@ALIGNERS.register("none")
def no_align(onset_rgb: np.ndarray) -> Box | None:
    """The whole frame (datasets shipped as cropped faces, SynthME)."""
    h, w = onset_rgb.shape[:2]
    return (0, 0, w, h)
