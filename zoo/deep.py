"""A generic :class:`~mer.zoo.api.Estimator` for torch models: a module, a loss function and a batch
transform. MER-CLIP, its baselines and later deep models (optical-flow CNNs, Micro-AU CLIP) are all
this class with different pieces."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mer.errors import BadInputError
from mer.protocols.clipset import ClipSet
from mer.zoo.api import Predictions
from mer.zoo.train import BatchFn, LossFn, TrainConfig, TrainResult, train_model, trainable_state

log = logging.getLogger("mer.train")

LogitsFn = Callable[[nn.Module, dict[str, Any]], torch.Tensor]
SetupFn = Callable[["DeepEstimator", ClipSet], None]


def default_device() -> torch.device:
    """CUDA when available (under ``torchrun``, this rank's GPU ``LOCAL_RANK``), else the CPU."""
    from mer.zoo.distributed import local_device

    return local_device()


def unweighted_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """UF1 (SPEC A.6): mean one-vs-rest F1 over classes present in the truth or the predictions."""
    f1s = []
    for c in range(num_classes):
        tp = int(np.sum((y_pred == c) & (y_true == c)))
        fp = int(np.sum((y_pred == c) & (y_true != c)))
        fn = int(np.sum((y_pred != c) & (y_true == c)))
        if tp + fp + fn == 0:
            continue  # absent from both: skipped, as the authors' metric code does
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


class DeepEstimator:
    """Train / predict a torch module through the shared loop.

    Args:
        model: The network (moved to ``device``).
        loss_fn: ``(model, batch, epoch) -> (loss, terms)``.
        batch_fn: ``(clips, idx, train, device) -> batch`` (augmentation inside, on the device).
        logits_fn: ``(model, batch) -> logits`` at prediction time (default: ``model(batch["video"])``
            or its ``"logits"`` entry).
        setup_fn: Called once at the start of :meth:`fit` with the training set (e.g. to cache text
            features of the training prompts).
        config: Optimisation recipe.
        seed: Seed of the training run.
        device: Torch device (default CUDA when available).
        work_dir: Where the per-fold checkpoint lives (resumed if present); None: no checkpoint.
        name: Model name, for messages.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        loss_fn: LossFn,
        batch_fn: BatchFn,
        logits_fn: LogitsFn | None = None,
        setup_fn: SetupFn | None = None,
        config: TrainConfig | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        work_dir: str | Path | None = None,
        name: str = "",
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.batch_fn = batch_fn
        self.logits_fn = logits_fn or _default_logits
        self.setup_fn = setup_fn
        self.config = config or TrainConfig()
        self.seed = seed
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.name = name
        self.result: TrainResult | None = None
        self.context: dict[str, Any] = {}  # state the pieces share (e.g. the prompt bank)

    @property
    def info(self) -> dict[str, Any]:
        """Selection rule, selected epoch and per-epoch history of the last :meth:`fit`."""
        if self.result is None:
            return {}
        return {
            "selection": self.result.selection,
            "selected_epoch": self.result.selected_epoch,
            "history": self.result.history,
        }

    def fit(self, train: ClipSet, val: ClipSet | None = None) -> None:
        """Train; with ``val`` the epoch with the best UF1 on ``val`` is kept (``--select oracle``
        passes the test fold here, and the run is marked as such)."""
        if self.setup_fn is not None:
            self.setup_fn(self, train)
        evaluate = None
        if val is not None:

            def evaluate(model: nn.Module, epoch: int) -> float:
                return self.validation_score(val)

        checkpoint = self.work_dir / "checkpoint.pt" if self.work_dir is not None else None
        self.result = train_model(
            self.model,
            train,
            loss_fn=self.loss_fn,
            batch_fn=self.batch_fn,
            cfg=self.config,
            device=self.device,
            seed=self.seed,
            checkpoint=checkpoint,
            evaluate=evaluate,
        )

    def validation_score(self, val: ClipSet) -> float:
        """The score ``--select oracle`` maximises over epochs: UF1 of the arg-max class on ``val``."""
        pred = self._logits(val).argmax(1).numpy()
        return unweighted_f1(np.asarray(val.labels), pred, val.num_classes)

    @torch.no_grad()
    def _logits(self, clips: ClipSet) -> torch.Tensor:
        self.model.eval()
        out = []
        bs = self.config.eval_batch_size
        use_amp = self.config.amp and self.device.type == "cuda"
        for i in range(0, len(clips), bs):
            batch = self.batch_fn(clips, np.arange(i, min(i + bs, len(clips))), False, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                out.append(self.logits_fn(self.model, batch).float().cpu())
        return torch.cat(out) if out else torch.empty(0, clips.num_classes)

    def predict(self, test: ClipSet) -> Predictions:
        """Class probabilities (softmax of the logits) and arg-max labels."""
        probs = self._logits(test).softmax(1).numpy()
        return Predictions(labels=probs.argmax(1), probs=probs, extras={"model": self.name, **self.info})

    def state_dict(self) -> dict[str, Any]:
        """Trainable weights and buffers (frozen towers are rebuilt from their source, not saved)."""
        return trainable_state(self.model)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` saved (tensors or arrays); frozen towers keep their own weights.

        Raises:
            ValueError: a tensor has no place in the model, a trainable one is missing, or a shape
                differs; nothing is loaded in that case.
        """
        own = self.model.state_dict()
        frozen = {n for n, p in self.model.named_parameters() if not p.requires_grad}
        tensors = {k: torch.as_tensor(v) for k, v in state.items()}
        for k, v in tensors.items():  # runs saved before 0-d tensors were kept 0-d hold them as shape (1,)
            if k in own and own[k].dim() == 0 and tuple(v.shape) == (1,):
                tensors[k] = v.reshape(())
        unexpected = sorted(set(tensors) - set(own))
        missing = sorted(set(own) - set(tensors) - frozen)
        wrong = [
            f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
            for k, v in tensors.items()
            if k in own and v.shape != own[k].shape
        ]
        if unexpected or missing or wrong:
            raise BadInputError(
                f"{self.name or 'model'}: weights do not fit: unexpected {unexpected[:5]}, "
                f"missing {missing[:5]}, shape {wrong[:5]}"
            )
        self.model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=False)


def _default_logits(model: nn.Module, batch: dict[str, Any]) -> torch.Tensor:
    out = model(batch["video"])
    return out["logits"] if isinstance(out, dict) else out
