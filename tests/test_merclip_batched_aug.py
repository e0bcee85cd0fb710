"""The batched colour jitter and flip equal torchvision's per-clip operations with the same draws."""

import random

import torch
import torchvision.transforms.v2.functional as TF

from mer.merclip.augment import AugmentConfig, augment_batch, color_jitter_batch


def test_batched_jitter_equals_torchvision_per_clip():
    torch.manual_seed(0)
    clips = torch.rand(5, 3, 3, 8, 8)
    apply = torch.tensor([True, False, True, True, True])
    got = color_jitter_batch(clips, apply, random.Random(7))
    # Replay the same draws, in the same order, through torchvision one clip at a time.
    r = random.Random(7)
    n = len(clips)
    b = [r.uniform(0.5, 1.5) for _ in range(n)]
    c = [r.uniform(0.5, 1.5) for _ in range(n)]
    s = [r.uniform(0.5, 1.5) for _ in range(n)]
    h = [r.uniform(-0.1, 0.1) for _ in range(n)]
    orders = []
    for _ in range(n):
        o = [0, 1, 2, 3]
        r.shuffle(o)
        orders.append(o)
    for i in range(n):
        want = clips[i]
        if apply[i]:
            for op in orders[i]:
                if op == 0:
                    want = TF.adjust_brightness(want, b[i])
                elif op == 1:
                    want = TF.adjust_contrast(want, c[i])
                elif op == 2:
                    want = TF.adjust_saturation(want, s[i])
                else:
                    want = TF.adjust_hue(want, h[i])
        torch.testing.assert_close(got[i], want.clamp(0, 1), atol=2e-5, rtol=0)
    assert torch.equal(got[1], clips[1])  # not drawn: untouched


def test_flip_only_pipeline_flips_every_frame_of_drawn_clips():
    clips = torch.rand(6, 4, 3, 8, 8)
    cfg = AugmentConfig(augmix=0.0, color_jitter=0.0, flip=0.5, lsfm=0.0)
    out = augment_batch(clips, cfg, random.Random(3))  # normalised, [N, 3, T, H, W]
    plain = augment_batch(clips, AugmentConfig.none(), random.Random(3))
    flipped = [torch.allclose(out[i], plain[i].flip(-1)) for i in range(6)]
    kept = [torch.allclose(out[i], plain[i]) for i in range(6)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)
