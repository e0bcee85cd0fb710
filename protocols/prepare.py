"""Preparation: a dataset as published → a validated, cached, face-cropped clip set.

The prepared cache of one dataset and one recipe lives in
``$MER_HOME/prepared/<dataset>/<key>/``:

- ``frames.npy``: every clip's T key frames as one uint8 array ``[N, T, S, S, 3]`` (memory-mapped);
- ``index.csv``: one row per clip (the :class:`~mer.protocols.sample.Sample` fields), in array order;
- ``meta.json``: recipe, sheet hash, validation report, and each file's size, SHA-256 (and the array's
  shape). ``key`` hashes the recipe, the sheet's bytes and the dataset root, so a second prepare is a
  no-op and a changed sheet, recipe or root gets a new cache.

A cache is built in a per-process temporary folder under a file lock and published with one rename
(:mod:`mer.protocols.cache`): two processes preparing one dataset at once end with one cache, the second
having waited for the first. Opening a cache checks sizes and shapes; ``verify="sha256"`` also checks
the checksums. A damaged cache is a :class:`~mer.protocols.cache.CacheError` naming the folder and
``mer data prepare ... --force``, which rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from mer.errors import MissingInputError
from mer.protocols.cache import (
    CacheError,
    build_lock,
    check_file,
    file_record,
    open_array,
    publish_dir,
    remove_stale,
    workspace,
)
from mer.protocols.clipset import ClipSet
from mer.protocols.config import dataset_entry, mer_home
from mer.protocols.datasets import DATASETS, DatasetSpec
from mer.protocols.faces import ALIGNERS, DETECT_MARGIN, DETECT_SHIFT, aligner_chain
from mer.protocols.io import atomic_write_json, file_sha256, stable_hash
from mer.protocols.layouts import LAYOUTS, FrameError, read_rgb
from mer.protocols.protocol import Protocol
from mer.protocols.sample import AnnotationError, Sample, ValidationIssue
from mer.protocols.sampling import SAMPLERS, uniform_pool_indices

CACHE_VERSION = 2  # 2: meta.json records every file's size and SHA-256


@dataclass(frozen=True)
class Recipe:
    """How clips are prepared; every field is part of the cache key.

    Attributes:
        frames: T, frames kept per clip.
        size: Side of the square output crop.
        resize_short: Short side the frame is resized to before the centre crop (None: ``size``);
            the authors' SAMM 5-class config uses 256 before a 224 crop.
        sampler: "keyframe" (SPEC A.1) or "uniform" (TSN segments).
        align: Face cropping: "none", "detect" (Haar cascade on the onset), "landmarks".
        on_align_failure: "full-frame" (use the whole frame and report it) or "error".
        pool: With the uniform sampler, frames cached per TSN segment (1: the centre only): slot 0 is
            the test frame, the others the frames training draws from
            (:func:`~mer.protocols.sampling.uniform_pool_indices`); the cache is then
            ``[N, T, pool, S, S, 3]`` and :class:`ClipSet` picks.
    """

    frames: int = 16
    size: int = 224
    resize_short: int | None = None
    sampler: str = "keyframe"
    align: str = "none"
    on_align_failure: str = "full-frame"
    pool: int = 1

    def key(self) -> dict[str, Any]:
        key = asdict(self)
        if key["pool"] == 1:  # caches made before the field existed keep their key
            del key["pool"]
        return key


@dataclass
class PreparedSet:
    """A finished prepared cache.

    Attributes:
        path: Cache folder.
        samples: One :class:`Sample` per clip, in array order.
        store: ``[N, T, S, S, 3]`` uint8 memmap.
        recipe: The recipe it was made with.
        issues: Validation report of the sheet (and alignment fallbacks).
        created: True when this call did the work, False when the cache already existed.
        verified: What opening it checked: "size" (sizes and shapes), "sha256" (also the checksums),
            or "built" (made by this call: its checksums were just computed).
        meta: The parsed ``meta.json``.
        alignment: How the face crop was made (:func:`alignment_report`).
    """

    path: Path
    samples: list[Sample]
    store: np.ndarray
    recipe: Recipe
    issues: list[ValidationIssue] = field(default_factory=list)
    created: bool = False
    verified: str = "size"
    meta: dict[str, Any] = field(default_factory=dict)
    alignment: dict[str, Any] = field(default_factory=dict)

    def clipset(self, protocol: Protocol) -> ClipSet:
        """The clips ``protocol`` uses, labelled by its class map."""
        pos = {s.sample_id: i for i, s in enumerate(self.samples)}
        kept, labels = protocol.select(self.samples)
        rows = np.asarray([pos[s.sample_id] for s in kept], dtype=np.int64)
        return ClipSet(self.store, rows, kept, labels, protocol.classes)


def resolve_sheet(spec: DatasetSpec, root: Path, annotations: Path | None) -> Path:
    """The annotation file: given, recorded by ``mer data add``, or found under the root."""
    if annotations is not None:
        return Path(annotations)
    entry = dataset_entry(spec.name)
    if entry and entry.get("annotations"):
        return Path(entry["annotations"])
    return spec.find_sheet(root)


def cache_dir(dataset: str, recipe: Recipe, sheet: Path, root: Path) -> Path:
    """Where the cache of ``dataset`` + ``recipe`` + this sheet + this root lives.

    The root is part of the key because two copies of a dataset can share a sheet and differ in
    frames (cropped and raw variants, SynthME rendered with other settings).
    """
    content = {
        "v": CACHE_VERSION,
        "recipe": recipe.key(),
        "sheet": file_sha256(sheet),
        "root": str(Path(root).resolve()),
    }
    chain, skipped = aligner_chain(recipe.align)
    if skipped:  # the landmark crop could not run: installing dlib later must not reuse these crops
        content["aligners"] = chain
    if "detect" in chain:  # the detector's box geometry: caches cropped with another one are not reused
        content["detect_box"] = [DETECT_MARGIN, DETECT_SHIFT]
    key = stable_hash(content)
    return mer_home() / "prepared" / dataset / key


def crop_and_resize(img: np.ndarray, box: tuple[int, int, int, int], recipe: Recipe) -> np.ndarray:
    """Crop ``box``, resize the short side to ``resize_short``, centre-crop ``size``×``size``."""
    x0, y0, x1, y1 = box
    img = img[y0:y1, x0:x1]
    h, w = img.shape[:2]
    short = recipe.resize_short or recipe.size
    scale = short / min(h, w)
    nh, nw = max(recipe.size, round(h * scale)), max(recipe.size, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    top, left = (nh - recipe.size) // 2, (nw - recipe.size) // 2
    return img[top : top + recipe.size, left : left + recipe.size]


def estimate_apex(frames: dict[int, Path], onset: int, offset: int, max_probe: int = 32) -> int:
    """The frame in ``[onset, offset]`` that differs most from the onset (mean absolute grey difference).

    Used only when a sheet gives no apex; the estimate is recorded in the sample's extras.
    """
    numbers = [n for n in frames if onset <= n <= offset]
    if not numbers:
        return (onset + offset) // 2
    probe = numbers[:: max(1, len(numbers) // max_probe)]

    def grey(n: int) -> np.ndarray:
        return cv2.resize(cv2.cvtColor(read_rgb(frames[n]), cv2.COLOR_RGB2GRAY), (64, 64)).astype(np.float32)

    ref = grey(numbers[0])
    return max(probe, key=lambda n: float(np.abs(grey(n) - ref).mean()))


def _pick(frames: dict[int, Path], n: int, sample: Sample, root: Path) -> Path:
    try:
        return frames[n]
    except KeyError:
        folder = Path(root) / sample.source
        raise FrameError(
            f"frame {n} of sample {sample.sample_id} (sheet row {sample.row}) not found in {folder}"
        ) from None


def _prepare_one(
    sample: Sample, root: Path, spec: DatasetSpec, recipe: Recipe, chain: list[str] | None = None
) -> tuple[np.ndarray, Sample, ValidationIssue | None]:
    frames = LAYOUTS.get(spec.frame_layout)(root, sample)
    extras = dict(sample.extras)
    onset, apex, offset = sample.onset, sample.apex, sample.offset
    if extras.get("frame_range") == "folder":
        # DFME / MEGC2019 lists give no frame numbers: the folder holds exactly the clip.
        onset, offset = min(frames), max(frames)
        apex = apex if apex is not None and onset <= apex <= offset else None
    if apex is None:
        apex = estimate_apex(frames, onset, offset)
        extras["apex_estimated"] = apex
    if recipe.pool > 1:  # TSN with its training candidates, segment-major (the store is 6-D)
        numbers = [n for seg in uniform_pool_indices(onset, offset, recipe.frames, recipe.pool) for n in seg]
    else:
        numbers = SAMPLERS.get(recipe.sampler)(onset, apex, offset, recipe.frames)
    read = {n: read_rgb(_pick(frames, n, sample, root)) for n in dict.fromkeys(numbers)}
    imgs = [read[n] for n in numbers]
    issue = None
    chain = chain or [recipe.align]
    box, used = None, None
    for name in chain:
        box = ALIGNERS.get(name)(imgs[0])
        if box is not None:
            used = name
            break
    if used is not None and used != recipe.align:
        extras["aligner"] = used  # the crop came from a fallback aligner: said in the report
    if used is not None and used != "none":
        extras["face_box"] = [int(v) for v in box]  # (x0, y0, x1, y1) on the full frame, for checking
    if box is None:
        if recipe.on_align_failure == "error":
            raise FrameError(f"no face found on the onset frame of {sample.sample_id} ({frames[numbers[0]]})")
        tried = " then ".join(chain)
        issue = ValidationIssue(
            sample.row, sample.sample_id, "align", f"no face found ({tried}); used the full frame"
        )
        h, w = imgs[0].shape[:2]
        box = (0, 0, w, h)
        extras["align_fallback"] = "full-frame"
    crops = {n: crop_and_resize(read[n], box, recipe) for n in read}
    clip = np.stack([crops[n] for n in numbers])
    if recipe.pool > 1:
        clip = clip.reshape(recipe.frames, recipe.pool, *clip.shape[1:])
    if extras != sample.extras:
        sample = Sample(**{**sample.__dict__, "extras": extras})
    return clip, sample, issue


def prepare(
    dataset: str,
    root: Path | None = None,
    recipe: Recipe | None = None,
    annotations: Path | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    force: bool = False,
    verify: str = "size",
) -> PreparedSet:
    """Parse, validate, sample, crop and cache ``dataset``; a no-op when the cache exists.

    Args:
        dataset: Dataset registry name.
        root: Dataset root (default: the one recorded by ``mer data add``).
        recipe: Preparation recipe (default :class:`Recipe`).
        annotations: Annotation sheet (default: recorded, or found under the root).
        workers: Threads reading and resizing frames (OpenCV releases the GIL).
        progress: Called with ``(done, total)`` after each clip.
        force: Rebuild the cache even when one exists (the way to repair a damaged one).
        verify: What opening an existing cache checks: "size" (sizes, shapes) or "sha256" (also the
            checksums of every file).

    Raises:
        AnnotationError: the sheet has a row that cannot be used (file, row and field named).
        FrameError: a missing frame folder, a missing or unreadable frame (path named).
        CacheError: the existing cache is damaged (folder and the rebuilding command named).
    """
    spec = DATASETS.get(dataset)
    recipe = recipe or Recipe()
    if root is None:
        entry = dataset_entry(dataset)
        if not entry:
            raise MissingInputError(
                f"dataset {dataset!r} has no root; run `mer data add {dataset} ROOT` first"
            )
        root = Path(entry["root"])
    root = Path(root)
    recorded = dataset_entry(dataset) or {}
    if recorded.get("layout") and Path(recorded["root"]).resolve() == root.resolve():
        LAYOUTS.get(recorded["layout"])(root, None)  # flow images: no frames to prepare (says so)
    sheet = resolve_sheet(spec, root, annotations)
    out = cache_dir(dataset, recipe, sheet, root)
    if not force and (out / "meta.json").exists():
        return load_prepared(out, verify)
    with build_lock(out, f"the {dataset} cache"):
        if not force and (out / "meta.json").exists():  # another process built it while we waited
            return load_prepared(out, verify)
        remove_stale(out)  # we hold the lock: a temporary folder is a killed builder's
        tmp = workspace(out)
        _build(dataset, spec, root, sheet, recipe, tmp, workers, progress)
        publish_dir(tmp, out)
    result = load_prepared(out, "size")
    result.created = True
    result.verified = "built"  # its checksums were just computed from these bytes
    return result


def _build(
    dataset: str,
    spec: DatasetSpec,
    root: Path,
    sheet: Path,
    recipe: Recipe,
    tmp: Path,
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Prepare every clip into the folder ``tmp`` (frames.npy, index.csv, meta.json last)."""
    parsed = spec.parse(sheet)
    fatal = [i for i in parsed.issues if i.fatal]
    if fatal:
        listing = "; ".join(str(i) for i in fatal[:5])
        raise AnnotationError(f"{sheet}: {len(fatal)} unusable row(s): {listing}")
    samples = parsed.samples
    if not samples:
        raise AnnotationError(f"{sheet}: no sample found")

    tmp.mkdir(parents=True)
    pool = (recipe.pool,) if recipe.pool > 1 else ()
    shape = (len(samples), recipe.frames, *pool, recipe.size, recipe.size, 3)
    store = np.lib.format.open_memmap(tmp / "frames.npy", mode="w+", dtype=np.uint8, shape=shape)
    final_samples: list[Sample] = list(samples)
    issues = list(parsed.issues)
    chain, skipped = aligner_chain(recipe.align)
    if skipped:
        issues.append(
            ValidationIssue(
                None,
                "*",
                "align",
                f"--align {recipe.align} cannot run: {skipped}; {chain[0]} crops every clip",
            )
        )
    done = 0

    def work(i: int) -> int:
        clip, s, issue = _prepare_one(samples[i], root, spec, recipe, chain)
        store[i] = clip
        final_samples[i] = s
        if issue is not None:
            issues.append(issue)
        return i

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for _ in pool.map(work, range(len(samples))):
            done += 1
            if progress:
                progress(done, len(samples))
    store.flush()
    pd.DataFrame([s.to_row() for s in final_samples]).to_csv(tmp / "index.csv", index=False)
    atomic_write_json(
        tmp / "meta.json",
        {
            "dataset": dataset,
            "recipe": recipe.key(),
            "shape": list(shape),
            "sheet": str(sheet),
            "sheet_sha256": file_sha256(sheet),
            "root": str(root),
            "layout": spec.frame_layout,
            "cache_version": CACHE_VERSION,
            "issues": [i.__dict__ for i in issues],
            "files": {name: file_record(tmp / name) for name in ("frames.npy", "index.csv")},
            "alignment": alignment_report(recipe, chain, skipped, final_samples),
        },
    )


def rebuild_command(dataset: str, recipe: Recipe | dict[str, Any] | None) -> str:
    """The ``mer data prepare`` line that rebuilds the cache of ``dataset`` with ``recipe``."""
    parts = [f"mer data prepare {dataset} --force"]
    rec = recipe.key() if isinstance(recipe, Recipe) else dict(recipe or {})
    default = Recipe().key()
    for k, v in rec.items():
        if v is not None and v != default.get(k):
            parts.append(f"--{k.replace('_', '-')} {v}")
    return " ".join(parts)


def alignment_report(
    recipe: Recipe, chain: list[str], skipped: str | None, samples: list[Sample]
) -> dict[str, Any]:
    """How the face crop was made: the aligner asked for, the ones that ran, and which clips fell back.

    Written to the cache's meta.json and copied into every run.json that uses the cache.
    """
    fell_back = sorted(s.sample_id for s in samples if s.extras.get("aligner"))
    full = sorted(s.sample_id for s in samples if s.extras.get("align_fallback"))
    used: dict[str, int] = {}
    for s in samples:
        name = "full-frame" if s.extras.get("align_fallback") else s.extras.get("aligner", chain[0])
        used[name] = used.get(name, 0) + 1
    return {
        "asked": recipe.align,
        "chain": chain,
        "unavailable": skipped,
        "clips_per_aligner": used,
        "fell_back_to_detector": fell_back if not skipped else "all clips",
        "full_frame": full,
    }


def load_prepared(path: Path, verify: str = "size") -> PreparedSet:
    """Open a finished cache folder (memory-mapped, read-only), checking it against its record.

    Args:
        path: The cache folder.
        verify: "size" (sizes and shapes: cheap) or "sha256" (also every file's checksum).

    Raises:
        CacheError: a file is missing, truncated, overwritten or unreadable, or meta.json is damaged.
    """
    path = Path(path)
    dataset = path.parent.name
    try:
        meta = json.loads((path / "meta.json").read_text())
        recipe = Recipe(**meta["recipe"])
        files = meta["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CacheError(
            f"damaged cache {path}: meta.json cannot be read ({e}); rebuild it with "
            f"`{rebuild_command(dataset, None)}` and the recipe options you prepared it with"
        ) from None
    rebuild = rebuild_command(meta.get("dataset", dataset), recipe)
    check_file(path / "index.csv", files["index.csv"], verify, rebuild)
    store = open_array(path / "frames.npy", files["frames.npy"], verify, rebuild)
    index = pd.read_csv(path / "index.csv", dtype=str, keep_default_na=False)
    samples = [Sample.from_row(r) for r in index.to_dict("records")]
    if len(samples) != store.shape[0]:
        raise CacheError(
            f"damaged cache {path}: index.csv has {len(samples)} rows for {store.shape[0]} clips; "
            f"rebuild it with `{rebuild}`"
        )
    issues = [ValidationIssue(**d) for d in meta.get("issues", [])]
    return PreparedSet(
        path,
        samples,
        store,
        recipe,
        issues,
        verified=verify,
        meta=meta,
        alignment=meta.get("alignment", {}),
    )


def verify_caches(dataset: str | None = None) -> list[tuple[Path, str | None]]:
    """Check every prepared cache (of ``dataset``, or of all datasets) and its flow caches byte by byte.

    Returns:
        One ``(folder, problem)`` per cache; ``problem`` is None for a sound cache, else the message
        (which names the rebuilding command).
    """
    from mer.protocols.cache import check_file

    base = mer_home() / "prepared"
    folders = sorted((base / dataset).glob("*/meta.json") if dataset else base.glob("*/*/meta.json"))
    report: list[tuple[Path, str | None]] = []
    for meta_path in folders:
        folder = meta_path.parent
        try:
            prepared = load_prepared(folder, "sha256")
            rebuild = rebuild_command(folder.parent.name, prepared.recipe)
            for rec_path in sorted(folder.glob("flow_*.json")):
                try:
                    files = json.loads(rec_path.read_text())["files"]
                except (OSError, ValueError, KeyError, TypeError):
                    raise CacheError(
                        f"damaged cache {folder}: {rec_path.name} cannot be read; rebuild it with `{rebuild}`"
                    ) from None
                for name, rec in files.items():
                    check_file(folder / name, rec, "sha256", rebuild)
        except CacheError as e:
            report.append((folder, str(e)))
        else:
            report.append((folder, None))
    return report
