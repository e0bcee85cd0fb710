"""DDP on the CPU (gloo, 2 processes): one training step of a tiny MER-CLIP through the shared loop
gives the same loss and the same (averaged) gradients as one process on the same global batch."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from mer.merclip.losses import clip_loss, focal_loss
from mer.merclip.model import MerClip, MerClipConfig
from mer.merclip.uniformerv2 import uniformerv2_config
from mer.protocols.clipset import ClipSet
from mer.protocols.sample import Sample
from mer.zoo import distributed
from mer.zoo.train import TrainConfig, train_model

N, EMBED = 8, 32


def _clips() -> ClipSet:
    rng = np.random.default_rng(0)
    store = rng.integers(0, 255, (N, 8, 48, 48, 3), dtype=np.uint8)
    samples = [Sample("synthme", f"s{i % 4}", f"c{i}", "", 0, 1, 2, "happiness") for i in range(N)]
    return ClipSet(store, np.arange(N), samples, np.arange(N) % 3, ("a", "b", "c"))


def _model() -> MerClip:
    torch.manual_seed(0)
    # No dropout, so both runs draw nothing at random; the text tower is not used (fixed features).
    enc = uniformerv2_config("tiny", global_mlp_dropout=(0.0, 0.0))
    cfg = MerClipConfig(encoder=enc, embed_dim=EMBED, head_dim=EMBED, head_dropout=0.0)
    return MerClip(cfg, 3, text=nn.Identity())


TEXT = torch.Generator().manual_seed(1)
TEXT_FEATURES = torch.randn(N, EMBED, generator=TEXT)


def _batch(clips, idx, train, device):
    frames = torch.as_tensor(clips.frames(idx)).to(device)
    video = frames.permute(0, 4, 1, 2, 3).float().div(255).sub(0.5)  # [n, 3, T, H, W]
    # Prefetched batches are looked up by position in the set, so text follows the same positions.
    return {"video": video, "label": torch.as_tensor(clips.labels[idx]), "text": TEXT_FEATURES[idx]}


def _loss(net, batch, epoch):
    module = getattr(net, "module", net)
    out = net(batch["video"])
    cls = focal_loss(out["logits"], batch["label"])
    align = clip_loss(out["embedding"], batch["text"], module.logit_scale())
    return align + cls, {"clip": align.item(), "cls": cls.item()}


def _one_step() -> dict:
    """One epoch of one global batch; returns the loss, the gradients the optimizer saw, the weights."""
    grads: list[torch.Tensor] = []

    def record(opt, args, kwargs):
        grads.extend(p.grad.detach().clone() for g in opt.param_groups for p in g["params"])

    handle = register_optimizer_step_pre_hook(record)
    try:
        model = _model()
        cfg = TrainConfig(epochs=1, batch_size=N, lr=1e-3, warmup_epochs=0, prefetch=2)
        result = train_model(
            model, _clips(), loss_fn=_loss, batch_fn=_batch, cfg=cfg, device=torch.device("cpu")
        )
    finally:
        handle.remove()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return {
        "loss": result.history[0]["loss"],
        "clip": result.history[0]["clip"],
        "grads": grads,
        "state": state,
    }


def init_gloo(rank: int, world: int, port: int):
    """Join a ``world``-process gloo group on 127.0.0.1:``port`` as ``rank`` (one thread per process),
    through mer's own ``torchrun``-style environment reading."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    return distributed.init_from_env()


def _worker(rank: int, world: int, port: int, out: str) -> None:
    info = init_gloo(rank, world, port)
    assert info.world_size == world and dist.get_backend() == "gloo"
    # Uneven shards still gather in rank order, and the gradient of each row sums over ranks.
    x = torch.full((rank + 1, 2), float(rank), requires_grad=True)
    g = distributed.gather_with_grad(x)
    (g * torch.arange(1, g.shape[0] + 1)[:, None]).sum().backward()
    res = _one_step()
    res["gathered"], res["gather_grad"] = g.detach(), x.grad
    torch.save(res, f"{out}.{rank}")
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built")
def test_two_process_step_equals_one_process_on_the_global_batch(tmp_path):
    out = str(tmp_path / "rank")
    torch.multiprocessing.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}", weights_only=False) for r in range(2)]
    single = _one_step()

    # The gather: rank 0 holds 1 row of 0s, rank 1 two rows of 1s; d/dx of Σ_rows (position · x),
    # summed over the 2 ranks' identical losses, is 2 · position.
    assert torch.equal(ranks[0]["gathered"][:, 0], torch.tensor([0.0, 1.0, 1.0]))
    assert torch.equal(ranks[0]["gather_grad"], torch.full((1, 2), 2.0))
    assert torch.equal(ranks[1]["gather_grad"], torch.tensor([[4.0, 4.0], [6.0, 6.0]]))

    for res in ranks:
        # The contrastive term sees all 8 clips (negatives gathered), and batch norm the 8-clip
        # statistics: the 2-process loss is the 1-process loss.
        assert res["loss"] == pytest.approx(single["loss"], rel=1e-5)
        assert res["clip"] == pytest.approx(single["clip"], rel=1e-5)
        assert len(res["grads"]) == len(single["grads"])
        for a, b in zip(res["grads"], single["grads"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        # Adam's first step is ~lr·sign(g): a gradient near 0 may flip an element by up to 2·lr·ε-ish
        # amounts, so the weights get a looser bound than the gradients (lr = 1e-3).
        for k, v in single["state"].items():
            torch.testing.assert_close(res["state"][k], v, rtol=1e-3, atol=1e-4)
