"""Losses of the Micro-AU CLIP reconstruction (SPEC B.4, assumed): weighted BCE, MiAUCL, GDLoss.

``L = BCE_w(presence) + λ1 · MiAUCL + λ2 · GDLoss`` with λ1 = λ2 = 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def positive_weights(targets: torch.Tensor, max_weight: float = 10.0) -> torch.Tensor:
    """Per-AU BCE ``pos_weight`` = negatives / positives of the training set, clipped to [1, max].

    Micro-AUs are rare (CASME II AU15: 17 of 255), and F1 punishes a detector that never fires.
    """
    pos = targets.float().sum(0)
    neg = targets.shape[0] - pos
    return (neg / pos.clamp(min=1)).clamp(1.0, max_weight)


def weighted_bce(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None
) -> torch.Tensor:
    """Mean binary cross-entropy of ``[N, K]`` presence logits."""
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=pos_weight)


def miaucl(text_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Micro-AU contrastive loss (reconstruction): per-AU alignment of AU features with AU text.

    For AU k the scaled similarities ``s[n, k, c]`` of sample n's AU-k feature with the "absent" (c = 0)
    and "present" (c = 1) prompts give two directions:

    - feature → text: each sample picks the prompt of its own state (cross-entropy over c);
    - text → feature: each prompt picks, among the batch's AU-k features, those whose state it
      describes (multi-positive InfoNCE over the batch, averaged over the positives), so samples that
      share an AU's on/off state are pulled together across the batch.

    Args:
        text_logits: ``[N, K, 2]`` scaled cosine similarities.
        targets: ``[N, K]`` 0/1.

    Returns:
        ``½ (L_v2t + L_t2v)``.
    """
    n, k, _ = text_logits.shape
    y = targets.long()
    v2t = F.cross_entropy(text_logits.float().reshape(n * k, 2), y.reshape(n * k))
    logp = text_logits.float().permute(1, 2, 0).log_softmax(-1)  # [K, 2, N]: prompt → batch
    pos = F.one_hot(y, 2).permute(1, 2, 0).float()  # [K, 2, N]
    count = pos.sum(-1)
    valid = count > 0  # a state no sample of the batch is in has no positive
    t2v = (-(logp * pos).sum(-1)[valid] / count[valid]).mean()
    return 0.5 * (v2t + t2v)


def cooccurrence_target(targets: torch.Tensor) -> torch.Tensor:
    """GDLoss target: row i is ``P(AU j | AU i)`` over the training labels, normalised to sum 1.

    An AU never present in training gets a uniform row (nothing is known of its dependencies).
    """
    y = targets.float()
    k = y.shape[1]
    counts = y.t() @ y  # [K, K], diagonal = support
    support = counts.diagonal()
    cond = counts / support.clamp(min=1)[:, None]
    rows = cond / cond.sum(1, keepdim=True).clamp(min=1e-12)
    return torch.where(support[:, None] > 0, rows, torch.full_like(rows, 1.0 / k))


def gd_loss(attention: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Global Dependency Loss: ``KL(target ‖ mean_n attention_n)``, averaged over rows.

    The batch-mean AU–AU attention is pulled toward the co-occurrence structure, so each sample's
    attention can still adapt to what it shows (an assumed form; SPEC B.3.4).
    """
    mean = attention.float().mean(0).clamp(min=eps)
    t = target.float()
    return (t * (t.clamp(min=eps).log() - mean.log())).sum(-1).mean()
