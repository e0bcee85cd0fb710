"""``mer explain``: where a trained model looks (Grad-CAM on the apex frame) and how its test features
cluster (t-SNE), the two qualitative figures of the MER-CLIP paper (SPEC A.7).

Both work from the outside of the network through hooks, so any MER-CLIP-family model (MER-CLIP, its
ablations, the UniformerV2 baseline) is explained the same way:

- Grad-CAM: the activations and gradients of the encoder's last UniBlock (its patch tokens form the last
  spatial feature map, ``[T', H', W', C]``), taken at the time step that holds the apex frame; channel
  weights are the spatial mean of the gradient of the class score, the map is ReLU(Σ weight·activation),
  upsampled to the face crop and scaled to [0, 1].
- t-SNE: the input of the final classifier layer (``head.fc``: the fused feature for a linear head, the
  class token of the last head block for the Emotion Transformer Head), for every test clip of the folds
  whose model the run kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mer.errors import BadInputError, MissingInputError, OptionValueError
from mer.protocols.clipset import ClipSet


@dataclass
class CamResult:
    """A Grad-CAM map of one clip.

    Attributes:
        cam: ``[S, S]`` float in [0, 1], over the prepared face crop (all zeros when no evidence).
        grid: ``[H', W']`` the map at token resolution, before upsampling.
        target: Class index explained.
        probs: Class probabilities of the clip.
        time_index: Encoder time step used (the one that holds the apex frame).
    """

    cam: np.ndarray
    grid: np.ndarray
    target: int
    probs: np.ndarray
    time_index: int


def _network(est: Any):
    """The MER-CLIP-family module of an estimator (refuses classical models with a clear message)."""
    model = getattr(est, "model", None)
    encoder = getattr(getattr(model, "visual", None), "encoder", None)
    if encoder is None or not hasattr(encoder, "blocks"):
        raise OptionValueError(
            f"{getattr(est, 'name', type(est).__name__)}: explain works on MER-CLIP-family models "
            "(a UniformerV2 encoder); this model has none"
        )
    return model, encoder


def apex_time_index(prepared_frames: int, encoder_cfg: Any) -> int:
    """The encoder time step that covers the apex key frame.

    Key-frame sampling puts the apex at position ``T // 2`` (and ``T // 2 - 1``); the batch transform
    resamples T to the encoder's frame count, and the 3D patch embedding (kernel 3, stride 2) centres time
    step ``j`` on input frame ``2j``.
    """
    apex = prepared_frames // 2
    idx = np.round(np.linspace(0, prepared_frames - 1, encoder_cfg.frames))
    j = int(np.abs(idx - apex).argmin())
    if encoder_cfg.temporal_downsample:
        j = int(round(j / 2))
    return min(j, encoder_cfg.time_tokens - 1)


def gradcam(est: Any, clips: ClipSet, index: int, target: int | None = None) -> CamResult:
    """Grad-CAM of clip ``index`` of ``clips`` for class ``target`` (default: the predicted class).

    Raises:
        ValueError: the estimator has no UniformerV2 encoder.
    """
    model, encoder = _network(est)
    cfg = encoder.cfg
    batch = est.batch_fn(clips, np.array([index]), False, est.device)
    video = batch["video"]
    model.eval()
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        store["tokens"] = output

    handle = encoder.blocks[-1].register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(video)["logits"].float()
            target = int(logits[0].argmax()) if target is None else int(target)
            model.zero_grad(set_to_none=True)
            logits[0, target].backward()
    finally:
        handle.remove()
    tokens = store["tokens"]
    t, side = cfg.time_tokens, cfg.grid
    shape = (1, t, 1 + side * side, tokens.shape[-1])
    ti = apex_time_index(clips.clip_shape[0], cfg)
    acts = (
        tokens.detach().reshape(shape)[0, ti, 1:].float()
    )  # patch tokens only; the class token has no place
    grads = tokens.grad.reshape(shape)[0, ti, 1:].float()
    weights = grads.mean(0)
    grid = F.relu(acts @ weights).reshape(side, side)
    size = clips.clip_shape[1]
    cam = F.interpolate(grid[None, None], size=(size, size), mode="bilinear", align_corners=False)[0, 0]
    cam = cam.clamp_min(0)
    if cam.max() > 0:
        cam = cam / cam.max()
    model.zero_grad(set_to_none=True)
    return CamResult(
        cam=cam.cpu().numpy(),
        grid=grid.cpu().numpy(),
        target=target,
        probs=logits.detach().softmax(-1)[0].cpu().numpy(),
        time_index=ti,
    )


def cam_mass(cam: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """Share of the heat map's total mass inside ``region`` (boolean mask) and outside it."""
    total = float(cam.sum())
    if total <= 0:
        return 0.0, 0.0
    inside = float(cam[region].sum()) / total
    return inside, 1.0 - inside


# ------------------------------------------------------------------------------------------- runs


@dataclass
class RunData:
    """A finished run's clips (from its prepared cache), labels and per-sample folds."""

    meta: dict[str, Any]
    clips: ClipSet
    folds: np.ndarray


def load_run_data(run_dir: Path) -> RunData:
    """The run's clips in ``predictions.csv`` order, with their true labels and folds.

    Raises:
        FileNotFoundError: not a finished run, or its prepared cache is gone and cannot be rebuilt.
    """
    from mer.protocols.prepare import Recipe, load_prepared
    from mer.protocols.protocol import PROTOCOLS
    from mer.protocols.runner import load_protocol_data

    run_dir = Path(run_dir)
    meta_path, pred_path = run_dir / "run.json", run_dir / "predictions.csv"
    if not meta_path.is_file() or not pred_path.is_file():
        raise MissingInputError(f"not a finished run (run.json and predictions.csv needed): {run_dir}")
    meta = json.loads(meta_path.read_text())
    cache = Path(meta.get("prepared", ""))
    if (cache / "meta.json").is_file():
        prepared = load_prepared(cache)
    else:  # the run came from another machine: prepare the protocol's data here (a no-op when cached)
        from mer.registrations import load_all

        load_all()
        prepared, _ = load_protocol_data(PROTOCOLS.get(meta["protocol"]), Recipe(**meta["recipe"]))
    pred = pd.read_csv(pred_path, dtype={"sample": str, "subject": str})
    pos = {s.sample_id: i for i, s in enumerate(prepared.samples)}
    missing = [s for s in pred["sample"] if s not in pos]
    if missing:
        raise MissingInputError(
            f"{run_dir}: sample(s) {missing[:3]} are not in the prepared cache {prepared.path}"
        )
    rows = np.array([pos[s] for s in pred["sample"]], dtype=np.int64)
    clips = ClipSet(
        prepared.store,
        rows,
        [prepared.samples[r] for r in rows],
        pred["y_true"].to_numpy(np.int64),
        tuple(meta["classes"]),
    )
    return RunData(meta, clips, pred["fold"].to_numpy(np.int64))


def saved_folds(run_dir: Path) -> list[int]:
    """Folds whose model the run kept (``--save-weights``)."""
    folder = Path(run_dir) / "weights"
    return (
        sorted(int(f.stem.split("_")[1]) for f in folder.glob("fold_*.safetensors"))
        if folder.is_dir()
        else []
    )


def fold_estimator(run_dir: Path, fold: int | None, device: str | None = None) -> tuple[Any, int]:
    """The estimator of one fold of a run (default: the last saved fold), and that fold."""
    from mer.zoo.artifact import artifact_from_run, build_from_config

    config, weights = artifact_from_run(Path(run_dir), fold)
    est = build_from_config(config, weights)
    if device is not None and hasattr(est, "model"):
        est.device = torch.device(device)
        est.model.to(est.device)
    return est, int(config.fold)


@dataclass
class ExplainPanel:
    """One run's Grad-CAM of the sample, for the figure."""

    title: str
    result: CamResult
    note: str = ""


def explain_sample(
    runs: list[Path], sample: str, out: Path, device: str | None = None
) -> tuple[Path, list[ExplainPanel]]:
    """Grad-CAM of one sample's apex frame under each run's model, side by side in one PNG.

    For each run the model of the sample's own fold is used when the run kept it (the sample was then
    unseen in training); otherwise the last saved fold's, and the panel says the sample was in its
    training set.

    Raises:
        KeyError: the sample is not in a run's predictions (the message lists a few that are).
    """
    panels, apex_rgb, classes, y_true = [], None, None, None
    for run_dir in runs:
        data = load_run_data(run_dir)
        ids = data.clips.sample_ids
        if sample not in ids:
            raise KeyError(f"sample {sample!r} is not in {run_dir} (e.g. {', '.join(ids[:3])})")
        i = ids.index(sample)
        fold = int(data.folds[i])
        kept = saved_folds(run_dir)
        est, used = fold_estimator(run_dir, fold if fold in kept else None, device)
        res = gradcam(est, data.clips, i)
        classes = data.meta["classes"]
        y_true = classes[int(data.clips.labels[i])]
        note = "" if used == fold else f"(fold {used} model: sample seen in training)"
        title = f"{data.meta['model']}-{data.meta['size']}: {classes[res.target]} {res.probs[res.target]:.2f}"
        panels.append(ExplainPanel(title, res, note))
        if apex_rgb is None:
            apex_rgb = data.clips.frames([i])[0][data.clips.clip_shape[0] // 2]
    _plot_cams(apex_rgb, panels, f"{sample} (true: {y_true})", Path(out))
    return Path(out), panels


def _plot_cams(apex_rgb: np.ndarray, panels: list[ExplainPanel], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 1 + len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
    axes[0, 0].imshow(apex_rgb)
    axes[0, 0].set_title("apex frame", fontsize=9)
    for ax, p in zip(axes[0, 1:], panels, strict=True):
        ax.imshow(apex_rgb)
        ax.imshow(p.result.cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(p.title + (f"\n{p.note}" if p.note else ""), fontsize=8)
    for ax in axes[0]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from mer.protocols.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------ t-SNE


def head_features(est: Any, clips: ClipSet) -> np.ndarray:
    """The input of the final classifier layer (``head.fc``) for every clip ``[N, D]``."""
    model, _ = _network(est)
    fc = getattr(getattr(model, "head", None), "fc", None)
    if fc is None:
        raise OptionValueError("explain --tsne needs a model whose head ends in a linear layer `head.fc`")
    seen: list[torch.Tensor] = []
    # The transformer head calls fc once per block; the last call (last block) is the one kept per batch.
    handle = fc.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().float().cpu()))
    feats = []
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(clips), 16):
                idx = np.arange(start, min(start + 16, len(clips)))
                seen.clear()
                model(est.batch_fn(clips, idx, False, est.device)["video"])
                feats.append(seen[-1])
    finally:
        handle.remove()
    return torch.cat(feats).numpy()


def tsne_run(run_dir: Path, out: Path, device: str | None = None, seed: int = 0) -> tuple[Path, np.ndarray]:
    """t-SNE of the test features of a run (each fold's test clips under that fold's kept model), coloured
    by true class; returns the PNG and the 2-D points.

    Raises:
        FileNotFoundError: the run kept no weights.
        ValueError: fewer than 3 test clips to embed.
    """
    from sklearn.manifold import TSNE

    run_dir = Path(run_dir)
    data = load_run_data(run_dir)
    folds = saved_folds(run_dir)
    if not folds:
        raise MissingInputError(f"run {run_dir} kept no weights; rerun it with --save-weights all")
    feats, labels = [], []
    for fold in folds:
        idx = np.flatnonzero(data.folds == fold)
        if len(idx) == 0:
            continue
        est, _ = fold_estimator(run_dir, fold, device)
        feats.append(head_features(est, data.clips.subset(idx)))
        labels.append(data.clips.labels[idx])
    if not feats or sum(len(f) for f in feats) < 3:
        raise BadInputError(
            f"run {run_dir}: fewer than 3 test clips under its kept fold models; nothing to embed"
        )
    x, y = np.concatenate(feats), np.concatenate(labels)
    perplexity = float(min(30.0, max(1.0, (len(x) - 1) / 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    _plot_tsne(points, y, data.meta, len(folds), Path(out))
    return Path(out), points


def _plot_tsne(points: np.ndarray, y: np.ndarray, meta: dict[str, Any], n_models: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for c, name in enumerate(meta["classes"]):
        sel = y == c
        if sel.any():
            ax.scatter(points[sel, 0], points[sel, 1], s=14, label=f"{name} ({int(sel.sum())})")
    ax.legend(fontsize=8, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(
        f"{meta['model']}-{meta['size']} on {meta['protocol']}: {len(points)} test clips, "
        f"{n_models} fold model(s)",
        fontsize=9,
    )
    fig.tight_layout()
    from mer.protocols.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=120, format=Path(out).suffix.lstrip(".") or "png")
    plt.close(fig)
