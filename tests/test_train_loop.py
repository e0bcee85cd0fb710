"""The shared training loop: schedule, parameter groups, NaN stop, resume, oracle selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mer.protocols.clipset import ClipSet
from mer.protocols.sample import Sample
from mer.zoo.train import NonFiniteLossError, TrainConfig, epoch_batches, lr_factor, param_groups, train_model


def _clipset(n: int = 12) -> ClipSet:
    rng = np.random.default_rng(0)
    store = rng.integers(0, 255, (n, 2, 4, 4, 3), dtype=np.uint8)
    samples = [Sample("synthme", f"s{i % 3}", f"c{i}", "", 0, 1, 2, "happiness") for i in range(n)]
    return ClipSet(store, np.arange(n), samples, np.arange(n) % 3, ("a", "b", "c"))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(96, 3)
        self.norm = nn.LayerNorm(3)

    def forward(self, x):
        return self.norm(self.fc(x))


def _batch(clips, idx, train, device):
    x = torch.from_numpy(clips.frames(idx)).float().flatten(1) / 255
    return {"x": x.to(device), "y": torch.as_tensor(clips.labels[idx]).long()}


def _loss(net, batch, epoch):
    loss = nn.functional.cross_entropy(net(batch["x"]), batch["y"])
    return loss, {"ce": loss.item()}


CFG = TrainConfig(epochs=3, batch_size=4, lr=1e-2, warmup_epochs=1, amp=False)


def test_lr_schedule_warmup_then_cosine_to_tenth():
    cfg = TrainConfig(epochs=55, warmup_epochs=5)
    assert lr_factor(0, 10, cfg) == pytest.approx(0.1)
    assert lr_factor(25, 10, cfg) == pytest.approx(0.1 + 0.9 * 0.5)
    assert lr_factor(50, 10, cfg) == pytest.approx(1.0)
    assert lr_factor(50 + 250, 10, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert lr_factor(550, 10, cfg) == pytest.approx(0.1)


def test_no_weight_decay_on_norms_and_biases():
    net = _Net()
    decay, no_decay = param_groups(net, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert [p.shape for p in decay["params"]] == [net.fc.weight.shape]
    assert {id(p) for p in no_decay["params"]} == {id(net.fc.bias), id(net.norm.weight), id(net.norm.bias)}


def test_balanced_sampler_draws_classes_evenly():
    labels = np.array([0] * 90 + [1] * 10)
    cfg = TrainConfig(batch_size=100, balanced_sampler=True)
    drawn = np.concatenate(
        [labels[b] for e in range(20) for b in epoch_batches(labels, cfg, np.random.default_rng(e))]
    )
    assert 0.4 < drawn.mean() < 0.6


def test_nan_loss_stops_with_a_clear_error():
    def nan_loss(net, batch, epoch):
        return net(batch["x"]).sum() * float("nan"), {}

    with pytest.raises(NonFiniteLossError, match="epoch 0, step 0"):
        train_model(
            _Net(), _clipset(), loss_fn=nan_loss, batch_fn=_batch, cfg=CFG, device=torch.device("cpu")
        )


def test_checkpoint_resume_gives_the_same_weights(tmp_path):
    torch.manual_seed(0)
    full = _Net()
    init = {k: v.clone() for k, v in full.state_dict().items()}
    train_model(full, _clipset(), loss_fn=_loss, batch_fn=_batch, cfg=CFG, device=torch.device("cpu"))

    ckpt = tmp_path / "ckpt.pt"
    part = _Net()
    part.load_state_dict(init)

    def stop_after_epoch_1(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(
            part,
            _clipset(),
            loss_fn=_loss,
            batch_fn=_batch,
            cfg=CFG,
            device=torch.device("cpu"),
            checkpoint=ckpt,
            progress=stop_after_epoch_1,
        )
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    resumed = _Net()  # fresh weights: everything must come from the checkpoint
    res = train_model(
        resumed,
        _clipset(),
        loss_fn=_loss,
        batch_fn=_batch,
        cfg=CFG,
        device=torch.device("cpu"),
        checkpoint=ckpt,
    )
    assert res.epochs_run == 3
    for k, v in full.state_dict().items():
        assert torch.allclose(resumed.state_dict()[k], v, atol=1e-6), k


def test_oracle_selection_restores_the_best_epoch():
    net = _Net()
    scores = [0.2, 0.9, 0.1]
    snapshots = []

    def evaluate(model, epoch):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return scores[epoch]

    res = train_model(
        net,
        _clipset(),
        loss_fn=_loss,
        batch_fn=_batch,
        cfg=CFG,
        device=torch.device("cpu"),
        evaluate=evaluate,
    )
    assert res.selection == "oracle" and res.selected_epoch == 1
    assert [round(r["val_score"], 2) for r in res.history] == scores
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[1][k])
    assert not torch.equal(snapshots[1]["fc.weight"], snapshots[2]["fc.weight"])


def test_oracle_selection_scores_emotions_by_uf1_and_aus_by_mean_f1():
    """``--select oracle`` keeps the epoch with the best validation score: the arg-max UF1 for emotion
    models, the mean per-AU F1 (sigmoid ≥ 0.5) for AU detectors."""
    from mer.baselines.microau_clip.estimators import MultiLabelEstimator
    from mer.zoo.deep import DeepEstimator

    samples = [Sample("synthme", "s", f"c{i}", "", 0, 1, 2, "") for i in range(4)]
    store = np.zeros((4, 1, 1, 1, 3), np.uint8)
    emo = ClipSet(store, np.arange(4), samples, np.array([0, 0, 1, 2]), ("a", "b", "c"))
    est = DeepEstimator.__new__(DeepEstimator)
    est._logits = lambda clips: torch.tensor([[2.0, 0, 0], [0, 2, 0], [0, 2, 0], [0, 0, 2]])
    # predictions 0,1,1,2 against 0,0,1,2: F1 a = 2/3, b = 2/3, c = 1
    assert est.validation_score(emo) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    aus = ClipSet(store, np.arange(4), samples, np.array([[1, 0], [1, 1], [0, 1], [0, 0]]), ("AU1", "AU4"))
    au_est = MultiLabelEstimator.__new__(MultiLabelEstimator)
    au_est._logits = lambda clips: torch.tensor([[3.0, -3], [3, -3], [-3, 3], [-3, -3]])
    # AU1 predicted 1,1,0,0 against 1,1,0,0: F1 1; AU4 predicted 0,0,1,0 against 0,1,1,0: F1 2/3
    assert au_est.validation_score(aus) == pytest.approx((1 + 2 / 3) / 2)
