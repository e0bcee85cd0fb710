"""MER-CLIP losses (SPEC A.4): symmetric contrastive loss (Eq. 10), focal loss (Eq. 13), and the
progressive weighting of the two (Eqs. 14–15)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mer.zoo.distributed import gather_with_grad


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` concatenated along dim 0, with gradients flowing back to this rank's part.

    Under DDP the contrastive negatives are the whole global batch (the authors' ``GatherLayer``);
    without a process group this is the identity. Ranks may hold different batch sizes.
    """
    return gather_with_grad(x)


class LogitScale(nn.Module):
    """The learnable ``s`` of Eq. 10, ``exp(s) = 1/τ``, starting at τ = 0.07 (or fixed, as the paper)."""

    def __init__(self, tau: float = 0.07, learnable: bool = True) -> None:
        super().__init__()
        value = torch.tensor(math.log(1.0 / tau))
        if learnable:
            self.value = nn.Parameter(value)
        else:
            self.register_buffer("value", value)

    def forward(self) -> torch.Tensor:
        return self.value.exp()


def clip_loss(
    video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, gather: bool = True
) -> torch.Tensor:
    """Eq. 10: ½(L_v2t + L_t2v) with cosine similarities (Eq. 9) scaled by ``scale = exp(s)``.

    Only diagonal pairs are positives; other samples with the same AU combination still count as
    negatives, as in the authors' code.

    Args:
        video: Visual embeddings ``[N, D]``.
        text: Text embeddings of each sample's prompt ``[N, D]``.
        scale: ``exp(s)`` (a scalar tensor).
        gather: Gather both sides across DDP ranks first (global-batch negatives).
    """
    v = F.normalize(video.float(), dim=-1)
    t = F.normalize(text.float(), dim=-1)
    if gather:
        v, t = gather_batch(v), gather_batch(t)
    logits = scale.float() * v @ t.t()
    target = torch.arange(v.shape[0], device=v.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 13: ``−mean_i (1 − p_i,y)^γ log p_i,y`` with no α-balancing term."""
    logp = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def progressive_weights(
    epoch: int, epochs: int = 55, w0: float = 2.0, w_min: float = 1.0, total: float = 2.0
) -> tuple[float, float]:
    """Eqs. 14–15: ``(w_clip, w_cls)`` at 0-based ``epoch``.

    ``w_clip = w0 − (w0 − w_min)·e/E`` and ``w_cls = total − w_clip``: the run starts on the
    contrastive loss only and moves linearly towards a 1:1 balance.
    """
    w = w0 - (w0 - w_min) * epoch / epochs
    return w, total - w
