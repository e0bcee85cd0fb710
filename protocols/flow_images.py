"""The ``flow-images`` layout: a folder of precomputed onset → apex motion images, one per sample.

Much of the MEGC2019 composite literature starts from flow images shared with the papers' code: one
small 3-channel 8-bit image (PNG or JPEG) per sample holding the horizontal flow u, the vertical flow
v and the optical strain, named after the sample (``sub11_EP15_04f.png``, ``006_006_1_2.png``,
``s03_s03_po_11.png``). With this layout the flow models (OFF-ApexNet, STSTNet, HTNet) read those
images instead of computing flow from frames:

    mer data add megc2019 DIR --layout flow-images --pattern "{subject}_{filename}" --annotations SHEET

How a file is found: the ``pattern`` is filled from each sheet row: ``{subject}`` is the sample's
subject folder (``sub11``, SAMM's zero-padded ``006``), ``{filename}`` its clip folder
(``EP15_04f``), ``{dataset}`` its source dataset (``casme2``; for the composite, the part) and
``{sample}`` the sample id. Names are compared after trimming whitespace and ignoring case, so
``SUB11_EP15_04F .png`` matches; a sample without an image, or two images with one name, is an error
naming them.

How a pixel becomes a value: the image is read as RGB; ``channels`` says what its R, G and B hold (default
``u, v, strain``; an array ``[u, v, strain]`` written with OpenCV's ``imwrite``, which stores BGR, reads
back as ``strain, v, u``); each channel then maps as ``value = (pixel - offset) / scale`` (defaults:
u and v centred on 128 over ±128, strain from 0 over 255: ``u, v ∈ [-1, 1)``, ``strain ∈ [0, 1]``).
The flow models divide every channel by its RMS over the training fold (``FlowScale``), so only the
centre (where "no motion" is) matters to them, not the scale. Images are resized to ``side`` (area
averaging down, bilinear up).

The channels are checked: an image whose three channels are nearly the same picture (a colour or grey
face photo, or frames given by mistake) and an image with a constant channel are errors naming the
file, because neither can be ``u, v, strain``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mer.errors import BadInputError, OptionValueError
from mer.protocols.layouts import IMAGE_SUFFIXES, LAYOUTS, FrameError
from mer.protocols.sample import Sample

LAYOUT = "flow-images"
CHANNELS = ("u", "v", "strain")
FIELDS = ("subject", "filename", "dataset", "sample")
#: Pairwise correlation of the three channels above which an image is taken for a photo, not flow.
PHOTO_CORRELATION = 0.95


class FlowImageError(BadInputError):
    """A flow-image folder or file that cannot be read as u, v, strain (the file is named)."""


@dataclass(frozen=True)
class FlowImageSpec:
    """How a flow-image folder is read; recorded with ``mer data add`` and in every run's record.

    Attributes:
        pattern: File name (without extension) of a sample, with ``{subject}``, ``{filename}``,
            ``{dataset}``, ``{sample}`` fields.
        channels: What the image's R, G and B channels hold, a permutation of ``u, v, strain``.
        offset: Per channel (u, v, strain), the pixel value of zero.
        scale: Per channel (u, v, strain), pixel units per unit of value.
        side: Side the images are resized to.
    """

    pattern: str = "{subject}_{filename}"
    channels: tuple[str, str, str] = CHANNELS
    offset: tuple[float, float, float] = (128.0, 128.0, 0.0)
    scale: tuple[float, float, float] = (128.0, 128.0, 255.0)
    side: int = 28

    def __post_init__(self) -> None:
        if sorted(self.channels) != sorted(CHANNELS):
            raise OptionValueError(
                f"--channels must name u, v and strain once each (the image's R, G, B), not {self.channels}"
            )
        if len(self.offset) != 3 or len(self.scale) != 3 or any(s == 0 for s in self.scale):
            raise OptionValueError(
                "--flow-offset / --flow-scale take three numbers (u, v, strain); no zero scale"
            )
        fields = set(re.findall(r"{(\w*)}", self.pattern))
        if not fields or fields - set(FIELDS):
            raise OptionValueError(
                f"--pattern {self.pattern!r}: use the fields {', '.join('{' + f + '}' for f in FIELDS)}"
            )
        if self.side < 4:
            raise OptionValueError(f"flow image side must be at least 4, not {self.side}")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FlowImageSpec:
        return cls(
            pattern=str(d.get("pattern", cls.pattern)),
            channels=tuple(d.get("channels", CHANNELS)),  # type: ignore[arg-type]
            offset=tuple(float(x) for x in d.get("offset", cls.offset)),  # type: ignore[arg-type]
            scale=tuple(float(x) for x in d.get("scale", cls.scale)),  # type: ignore[arg-type]
            side=int(d.get("side", cls.side)),
        )


def _norm(name: str) -> str:
    """A name as compared: trimmed, whitespace runs collapsed, lower case."""
    return re.sub(r"\s+", " ", name).strip().lower()


def expected_name(spec: FlowImageSpec, sample: Sample) -> str:
    """The file name (without extension) ``spec.pattern`` gives ``sample``."""
    parts = Path(sample.source).parts
    values = {
        "subject": parts[-2] if len(parts) >= 2 else sample.subject,
        "filename": parts[-1] if parts else sample.sample_id,
        "dataset": str(sample.extras.get("source_dataset") or sample.dataset),
        "sample": sample.sample_id,
    }
    return spec.pattern.format(**values)


def index_folder(folder: Path) -> dict[str, Path]:
    """Every image of ``folder`` (and below) by its compared name.

    Raises:
        FlowImageError: no such folder, no image in it, or two images that compare equal.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FlowImageError(f"flow-image folder not found: {folder}")
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        key = _norm(p.stem)
        if key in out:
            raise FlowImageError(f"two flow images share the name {p.stem!r}: {out[key]} and {p}")
        out[key] = p
    if not out:
        raise FlowImageError(f"no image (png, jpg…) in flow-image folder {folder}")
    return out


def match_samples(folder: Path, samples: Sequence[Sample], spec: FlowImageSpec) -> tuple[list[Path], int]:
    """Each sample's image, in sample order, and the number of images no sample asked for.

    Raises:
        FlowImageError: samples without an image (the first few named, with the sheet row and the
            name looked for).
    """
    index = index_folder(folder)
    found, missing = [], []
    for s in samples:
        name = expected_name(spec, s)
        path = index.get(_norm(name))
        if path is None:
            missing.append(f"{s.sample_id} (sheet row {s.row}): {name!r}")
        found.append(path)
    if missing:
        shown = "; ".join(missing[:5]) + (f"; … {len(missing) - 5} more" if len(missing) > 5 else "")
        example = next(iter(index.values())).name
        raise FlowImageError(
            f"{len(missing)} of {len(samples)} samples have no image in {folder} with --pattern "
            f"{spec.pattern!r} (files look like {example!r}): {shown}"
        )
    return found, len(index) - len(set(found))


def read_flow_image(path: Path, spec: FlowImageSpec) -> np.ndarray:
    """One image as ``[3, side, side]`` float32 (u, v, strain) after the value mapping.

    Raises:
        FlowImageError: unreadable, not 3 channels, a constant channel, or channels that are nearly
            the same picture (a photo, not flow).
    """
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise FlowImageError(f"unreadable flow image (corrupt or not an image): {path}")
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise FlowImageError(
            f"{path}: a flow image has 3 channels (u, v, strain); this one has shape {img.shape}"
        )
    if img.dtype != np.uint8:
        raise FlowImageError(f"{path}: flow images are 8-bit; this one is {img.dtype}")
    rgb = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32)
    check_channels(rgb, path, spec)
    order = [spec.channels.index(c) for c in CHANNELS]  # RGB position of u, v, strain
    chans = [(rgb[..., i] - spec.offset[k]) / spec.scale[k] for k, i in enumerate(order)]
    side = spec.side
    interp = cv2.INTER_AREA if min(rgb.shape[:2]) >= side else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (side, side), interpolation=interp) for c in chans]).astype(np.float32)


def check_channels(rgb: np.ndarray, path: Path, spec: FlowImageSpec) -> None:
    """Refuse an image that cannot hold u, v and strain (see the module docstring)."""
    for i, name in enumerate(spec.channels):
        if float(rgb[..., i].max() - rgb[..., i].min()) < 1.0:
            raise FlowImageError(
                f"{path}: channel {'RGB'[i]} ({name}) is constant ({rgb[..., i].flat[0]:.0f}): not a flow "
                "image, or its channels are not u, v, strain (--channels)"
            )
    flat = rgb.reshape(-1, 3).T
    corr = np.corrcoef(flat)
    if min(corr[0, 1], corr[0, 2], corr[1, 2]) > PHOTO_CORRELATION:
        raise FlowImageError(
            f"{path}: its three channels are nearly the same picture (correlation "
            f"{min(corr[0, 1], corr[0, 2], corr[1, 2]):.2f}), like a face photo or a frame, not u, v, strain"
        )


@dataclass
class FlowImageSet:
    """The flow images of a dataset's samples, read.

    Attributes:
        folder: The image folder.
        spec: How it was read.
        flow: ``[N, 3, side, side]`` float32 (u, v, strain), in sample order.
        files: Each sample's file.
        unmatched: Images in the folder that no sample of the sheet names.
    """

    folder: Path
    spec: FlowImageSpec
    flow: np.ndarray
    files: list[Path] = field(default_factory=list)
    unmatched: int = 0

    def record(self) -> dict[str, Any]:
        """What run.json says about the input."""
        return {
            "method": LAYOUT,
            "folder": str(self.folder),
            **self.spec.to_json(),
            "unmatched": self.unmatched,
        }


def read_flow_images(
    folder: Path,
    samples: Sequence[Sample],
    spec: FlowImageSpec,
    progress: Callable[[int, int], None] | None = None,
) -> FlowImageSet:
    """Match ``samples`` to the images of ``folder`` and read each one (checked, mapped, resized).

    Raises:
        FlowImageError: see :func:`match_samples` and :func:`read_flow_image`.
    """
    files, unmatched = match_samples(folder, samples, spec)
    flow = np.empty((len(files), 3, spec.side, spec.side), dtype=np.float32)
    for i, path in enumerate(files):
        flow[i] = read_flow_image(path, spec)
        if progress:
            progress(i + 1, len(files))
    return FlowImageSet(Path(folder), spec, flow, files, unmatched)


@LAYOUTS.register(LAYOUT)
def no_frames(root: Path, sample: Sample | None) -> dict[int, Path]:
    """A ``flow-images`` dataset has motion images, not frames: only the flow models can use it."""
    raise FrameError(
        f"{root} is registered as flow images (one motion image per sample, no frames): only the flow "
        "models (off-apexnet, ststnet, htnet) can run on it; `mer data add` its frames for the others"
    )


def spec_from_options(
    layout: str | None,
    pattern: str | None = None,
    channels: str | None = None,
    offset: str | None = None,
    scale: str | None = None,
) -> FlowImageSpec | None:
    """``mer data add`` options → a :class:`FlowImageSpec` (None for a frame dataset).

    Raises:
        OptionValueError: an unknown layout, a flow-image option without ``--layout flow-images``, or a
            value that cannot be read.
    """
    given = {"--pattern": pattern, "--channels": channels, "--flow-offset": offset, "--flow-scale": scale}
    if layout is None:
        stray = [k for k, v in given.items() if v is not None]
        if stray:
            raise OptionValueError(f"{', '.join(stray)} go with --layout {LAYOUT}")
        return None
    if layout != LAYOUT:
        raise OptionValueError(
            f"--layout: {LAYOUT} is the one layout to choose (frames are found as published)"
        )

    def numbers(text: str | None, default: tuple[float, ...], flag: str) -> tuple[float, ...]:
        if text is None:
            return default
        try:
            values = tuple(float(x) for x in text.split(","))
        except ValueError:
            raise OptionValueError(
                f"{flag}: three numbers for u, v, strain, e.g. 128,128,0; not {text!r}"
            ) from None
        if len(values) != 3:
            raise OptionValueError(f"{flag}: three numbers for u, v, strain, not {text!r}")
        return values

    return FlowImageSpec(
        pattern=FlowImageSpec.pattern if pattern is None else pattern,
        channels=CHANNELS if channels is None else tuple(c.strip().lower() for c in channels.split(",")),  # type: ignore[arg-type]
        offset=numbers(offset, FlowImageSpec.offset, "--flow-offset"),  # type: ignore[arg-type]
        scale=numbers(scale, FlowImageSpec.scale, "--flow-scale"),  # type: ignore[arg-type]
    )


def add_flow_images(
    name: str, folder: Path, annotations: Path | None, spec: FlowImageSpec
) -> tuple[dict[str, Any], FlowImageSet]:
    """``mer data add NAME FOLDER --layout flow-images``: check that every sample of the sheet has a
    readable image, then record the folder, the sheet and ``spec``.

    Raises:
        FlowImageError: a sample without an image, or an image that is not u, v, strain.
        AnnotationError: an unreadable sheet.
    """
    from mer.protocols.config import set_dataset_entry
    from mer.protocols.datasets import DATASETS

    folder = Path(folder).expanduser().resolve()
    ds = DATASETS.get(name)
    sheet = Path(annotations).expanduser().resolve() if annotations is not None else ds.find_sheet(folder)
    images = read_flow_images(folder, parse_samples(name, sheet), spec)
    entry = {"root": str(folder), "annotations": str(sheet), "layout": LAYOUT, "flow_images": spec.to_json()}
    return set_dataset_entry(name, entry), images


def parse_samples(dataset: str, sheet: Path) -> list[Sample]:
    """Every usable sample of ``sheet``.

    Raises:
        AnnotationError: a row that cannot be used, or no sample at all.
    """
    from mer.protocols.datasets import DATASETS
    from mer.protocols.sample import AnnotationError

    parsed = DATASETS.get(dataset).parse(sheet)
    fatal = [i for i in parsed.issues if i.fatal]
    if fatal:
        listing = "; ".join(str(i) for i in fatal[:5])
        raise AnnotationError(f"{sheet}: {len(fatal)} unusable row(s): {listing}")
    if not parsed.samples:
        raise AnnotationError(f"{sheet}: no sample found")
    return parsed.samples


def registered_spec(dataset: str) -> tuple[dict[str, Any], FlowImageSpec] | None:
    """The entry and :class:`FlowImageSpec` of ``dataset`` when it was added as flow images, else None."""
    from mer.protocols.config import dataset_entry

    entry = dataset_entry(dataset)
    if not entry or entry.get("layout") != LAYOUT:
        return None
    return entry, FlowImageSpec.from_json(entry.get("flow_images") or {})


def flow_image_clips(
    protocol: Any, progress: Callable[[int, int], None] | None = None
) -> tuple[FlowImageSet, Any] | None:
    """The protocol's clips with their flow read from the registered flow images (no frames: the
    clip store is empty), or None when the protocol's dataset is not a flow-image folder."""
    from mer.protocols.clipset import ClipSet

    found = registered_spec(protocol.dataset)
    if found is None:
        return None
    entry, spec = found
    kept, labels = protocol.select(parse_samples(protocol.dataset, Path(entry["annotations"])))
    images = read_flow_images(Path(entry["root"]), kept, spec, progress)
    store = np.zeros((len(kept), 0, 0, 0, 3), dtype=np.uint8)  # flow models never read frames
    rows = np.arange(len(kept))
    return images, ClipSet(store, rows, kept, labels, protocol.classes, flows={"flow": images.flow})
