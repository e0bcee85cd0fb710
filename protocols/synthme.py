"""SynthME: the embedded synthetic micro-expression benchmark (SPEC D).

A procedural dataset that needs no licence: cartoon faces whose identities differ far more than their
expressions, each clip a neutral → apex → neutral movement of a few pixels in the facial regions of
its action units. It is written to disk like a real dataset (CASME II layout: ``sub01/EP01_03/img12.jpg``
plus a coding sheet) so that parsing, preparation, protocols, training and the leaderboard all run on
it for real.

Emotions come from AU combinations the way the real datasets pair them (AU6+12 happiness, AU1+2(+5)
surprise, AU4/7/9/10/14/15/17/24 the negative emotions), with deliberate overlaps (contempt pulls one
lip corner like a smile, fear raises the brows like surprise) and label noise, so the task is learnable
but not trivial. Everything is deterministic from the seed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mer.protocols.au import parse_au_cell
from mer.protocols.datasets import DatasetSpec, ParseResult, register_dataset
from mer.protocols.emotions import canonical_emotion, three_class
from mer.protocols.fingerprint import SYNTH_PARAMS_FILE, synth_params
from mer.protocols.io import atomic_write_json, atomic_write_text
from mer.protocols.sample import AnnotationError, Sample, ValidationIssue

SHEET_NAME = "SynthME-coding.csv"
SHEET_COLUMNS = (
    "Subject",
    "Filename",
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    "Action Units",
    "Estimated Emotion",
)

# Emotion → (weight, list of (probability, AU tokens) alternatives). Tokens may carry a side.
# The pairings follow the real datasets' coding (CASME II, SAMM); overlaps are on purpose.
EMOTION_AUS: dict[str, tuple[float, list[tuple[float, tuple[str, ...]]]]] = {
    "happiness": (0.20, [(0.5, ("6", "12")), (0.3, ("12",)), (0.2, ("L12",))]),
    "surprise": (0.18, [(0.5, ("1", "2")), (0.3, ("1", "2", "5")), (0.2, ("1", "2", "25"))]),
    "disgust": (0.16, [(0.4, ("9",)), (0.3, ("4", "10")), (0.3, ("4", "9"))]),
    "repression": (0.08, [(0.5, ("14",)), (0.5, ("17", "24"))]),
    "sadness": (0.06, [(0.6, ("1", "15")), (0.4, ("15", "17"))]),
    "anger": (0.08, [(0.6, ("4", "7")), (0.4, ("4", "7", "24"))]),
    "fear": (0.04, [(0.6, ("1", "2", "4")), (0.4, ("1", "4", "20"))]),
    "contempt": (0.05, [(0.6, ("R12",)), (0.4, ("R14",))]),
    "others": (0.15, [(0.3, ("4",)), (0.3, ("7",)), (0.2, ("17",)), (0.2, ("1",))]),
}
SYNTH_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 24, 25)


@dataclass(frozen=True)
class Identity:
    """A synthetic subject: geometry and appearance that stay fixed across its clips."""

    skin: tuple[int, int, int]
    background: tuple[int, int, int]
    face_w: float  # half-width of the face ellipse, as a fraction of the frame's short side
    face_h: float
    eye_dx: float  # eye centre distance from the midline (fraction of face_w)
    eye_y: float  # eye height (fraction of face_h above the centre)
    eye_w: float
    eye_h: float
    brow_gap: float  # brow height above the eye (fraction of face_h)
    brow_thick: int
    mouth_w: float  # half-width of the mouth (fraction of face_w)
    mouth_y: float
    lip_thick: int
    expressiveness: float
    texture_seed: int


def make_identity(rng: np.random.Generator) -> Identity:
    """Draw a subject; identity differences (tens of pixels) dwarf AU motions (a few pixels)."""
    tone = rng.uniform(0, 1)  # along a natural skin-tone axis, dark to light, with a little tint
    skin = tuple(
        int(np.clip(c, 0, 255))
        for c in np.array([95, 60, 45]) + tone * np.array([150, 135, 120]) + rng.normal(0, 8, size=3)
    )
    bg = tuple(int(x) for x in rng.integers(20, 235, size=3))
    return Identity(
        skin=skin,  # type: ignore[arg-type]
        background=bg,  # type: ignore[arg-type]
        face_w=float(rng.uniform(0.28, 0.38)),
        face_h=float(rng.uniform(0.38, 0.46)),
        eye_dx=float(rng.uniform(0.34, 0.48)),
        eye_y=float(rng.uniform(0.12, 0.24)),
        eye_w=float(rng.uniform(0.13, 0.2)),
        eye_h=float(rng.uniform(0.05, 0.09)),
        brow_gap=float(rng.uniform(0.1, 0.17)),
        brow_thick=int(rng.integers(2, 5)),
        mouth_w=float(rng.uniform(0.3, 0.48)),
        mouth_y=float(rng.uniform(0.42, 0.55)),
        lip_thick=int(rng.integers(2, 5)),
        expressiveness=float(rng.uniform(0.8, 1.25)),
        texture_seed=int(rng.integers(1 << 31)),
    )


def _texture(identity: Identity, h: int, w: int) -> np.ndarray:
    """Per-subject fixed skin texture (freckles, shading), the same in every clip of the subject."""
    rng = np.random.default_rng(identity.texture_seed)
    small = rng.normal(0, 14, size=(max(2, h // 12), max(2, w // 12), 1)).astype(np.float32)
    tex = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)[..., None]
    spots = (rng.random((h, w, 1)) < 0.004).astype(np.float32) * -40
    return tex + cv2.GaussianBlur(spots, (3, 3), 0)[..., None]


def render_face(
    identity: Identity,
    activation: dict[str, float],
    h: int,
    w: int,
    shift: tuple[float, float] = (0.0, 0.0),
    texture: np.ndarray | None = None,
    amplitude: float = 0.03,
) -> np.ndarray:
    """Draw one frame.

    Args:
        identity: The subject.
        activation: AU token ("12", "L12", "R14"...) → intensity in [0, 1] for this frame.
        h: Frame height.
        w: Frame width.
        shift: Head translation in pixels (x, y).
        texture: Precomputed :func:`_texture` (else none).
        amplitude: Largest AU displacement as a fraction of the frame's short side.

    Returns:
        RGB uint8 ``[h, w, 3]``.
    """
    s = min(h, w)
    amp = amplitude * s * identity.expressiveness  # a few pixels at 128: a micro, not a macro expression
    cx, cy = w / 2 + shift[0], h / 2 + shift[1]
    fw, fh = identity.face_w * s, identity.face_h * s

    def act(au: int, side: str) -> float:
        """Intensity of ``au`` on the face's ``side`` ("L" = image left)."""
        both = activation.get(str(au), 0.0)
        return max(both, activation.get(f"{side}{au}", 0.0))

    img = np.empty((h, w, 3), np.float32)
    img[:] = identity.background
    sub = 8  # fixed-point shift for sub-pixel drawing
    k = 1 << sub

    def P(x: float, y: float) -> tuple[int, int]:
        return (int(round(x * k)), int(round(y * k)))

    face = np.zeros((h, w), np.uint8)
    cv2.ellipse(face, P(cx, cy), (int(fw * k), int(fh * k)), 0, 0, 360, 255, -1, cv2.LINE_AA, sub)
    fmask = (face.astype(np.float32) / 255)[..., None]
    skin = np.empty_like(img)
    skin[:] = identity.skin
    if texture is not None:
        skin = skin + texture
    img = img * (1 - fmask) + skin * fmask

    dark = tuple(max(0, c - 110) for c in identity.skin)
    lip = (min(255, identity.skin[0] + 20), max(0, identity.skin[1] - 60), max(0, identity.skin[2] - 50))
    for side, sgn in (("L", -1), ("R", 1)):
        ex, ey = cx + sgn * identity.eye_dx * fw, cy - identity.eye_y * fh
        # Cheeks (AU6 raises them, AU14 dimples): a soft shaded disc.
        cheek_y = ey + 0.28 * fh - 0.8 * amp * act(6, side)
        cheek = np.zeros((h, w), np.uint8)
        cv2.circle(cheek, P(ex, cheek_y), int(0.12 * fw * k), 255, -1, cv2.LINE_AA, sub)
        cmask = cv2.GaussianBlur(cheek, (0, 0), 0.04 * s).astype(np.float32)[..., None] / 255 * 0.35
        img = img * (1 - cmask) + np.array(lip, np.float32) * cmask
        # Eyes: AU5 widens, AU7 narrows, AU6 pushes the lower lid up.
        open_ = identity.eye_h * fh * (1 + 0.6 * act(5, side) - 0.5 * act(7, side) - 0.25 * act(6, side))
        cv2.ellipse(
            img,
            P(ex, ey),
            (int(identity.eye_w * fw * k), int(max(1, open_) * k)),
            0,
            0,
            360,
            (250, 250, 250),
            -1,
            cv2.LINE_AA,
            sub,
        )
        cv2.circle(img, P(ex, ey), int(0.5 * max(1, open_) * k), (30, 30, 30), -1, cv2.LINE_AA, sub)
        # Brows: AU1 raises the inner end, AU2 the outer end, AU4 lowers and draws them together.
        by = ey - identity.brow_gap * fh
        inner = (
            ex - sgn * identity.eye_w * fw * (1.1 - 0.3 * act(4, side)),
            by - amp * act(1, side) + amp * act(4, side),
        )
        outer = (ex + sgn * identity.eye_w * fw * 1.2, by - amp * act(2, side) + 0.6 * amp * act(4, side))
        mid = ((inner[0] + outer[0]) / 2, min(inner[1], outer[1]) - 0.03 * fh - 0.5 * amp * act(2, side))
        pts = np.array([P(*inner), P(*mid), P(*outer)], np.int32)
        cv2.polylines(img, [pts], False, dark, identity.brow_thick, cv2.LINE_AA, sub)
    # Nose: AU9 wrinkles (lines appear), AU10 raises the lip towards it.
    nx, ny = cx, cy + 0.12 * fh
    cv2.line(img, P(nx - 0.1 * fw, ny), P(nx + 0.1 * fw, ny), dark, 2, cv2.LINE_AA, sub)
    wr = activation.get("9", 0.0)
    if wr > 0:
        for dx in (-0.07, 0.07):
            cv2.line(
                img,
                P(nx + dx * fw, ny - 0.12 * fh),
                P(nx + dx * fw * 0.4, ny - 0.05 * fh),
                tuple(float(c) * (1 - 0.5 * wr) for c in identity.skin),
                2,
                cv2.LINE_AA,
                sub,
            )
    # Mouth: corners moved by AU12 (up, out), AU15 (down), AU14 (in), AU20 (out); AU10 lifts the upper
    # lip, AU17 pushes the lower lip and chin up, AU24 presses, AU25 parts.
    my = cy + identity.mouth_y * fh - 0.5 * amp * act(10, "L")
    corners = []
    for side, sgn in (("L", -1), ("R", 1)):
        dx = identity.mouth_w * fw + amp * (0.6 * act(12, side) + 0.8 * act(20, side) - 0.7 * act(14, side))
        dy = -amp * act(12, side) + amp * act(15, side) + 0.3 * amp * act(20, side)
        corners.append((cx + sgn * dx, my + dy))
    lift = 0.6 * amp * activation.get("17", 0.0)
    press = 1 - 0.5 * activation.get("24", 0.0)
    part = 0.8 * amp * activation.get("25", 0.0)
    upper_mid = (cx, my - 0.04 * fh * press - 0.4 * amp * activation.get("10", 0.0))
    lower_mid = (cx, my + 0.05 * fh * press + part - lift)
    for mid, thick in ((upper_mid, identity.lip_thick), (lower_mid, identity.lip_thick + 1)):
        pts = np.array([P(*corners[0]), P(*mid), P(*corners[1])], np.int32)
        cv2.polylines(img, [pts], False, lip, thick, cv2.LINE_AA, sub)
    # Chin crease, raised by AU17.
    chin_y = cy + 0.8 * fh - lift
    cv2.ellipse(
        img, P(cx, chin_y), (int(0.18 * fw * k), int(0.04 * fh * k)), 0, 200, 340, dark, 1, cv2.LINE_AA, sub
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def _choose(rng: np.random.Generator, options: list[tuple[float, tuple[str, ...]]]) -> tuple[str, ...]:
    p = np.array([o[0] for o in options])
    return options[int(rng.choice(len(options), p=p / p.sum()))][1]


def _profile(n: int, apex_pos: int) -> np.ndarray:
    """Intensity per frame: 0 at onset, 1 at the apex, back near 0 at the offset (smooth)."""
    t = np.arange(n, dtype=np.float64)
    up = np.sin(0.5 * math.pi * np.clip(t / max(apex_pos, 1), 0, 1)) ** 2
    down = np.cos(0.5 * math.pi * np.clip((t - apex_pos) / max(n - 1 - apex_pos, 1), 0, 1)) ** 2
    out = np.where(t <= apex_pos, up, 0.1 + 0.9 * down)
    out[0] = 0.0
    return out


def write_synthme(
    out: Path,
    subjects: int = 16,
    clips_per_subject: int = 12,
    seed: int = 0,
    width: int = 128,
    height: int = 128,
    label_noise: float = 0.2,
    frames: tuple[int, int] = (20, 60),
    amplitude: float = 0.04,
    noise: float = 1.5,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write SynthME to ``out`` (frame folders, ``SynthME-coding.csv``, ``SynthME-params.json``); returns
    the sheet path.

    Args:
        out: Dataset root to create.
        subjects: Number of subjects.
        clips_per_subject: Clips per subject.
        seed: Everything (identities, AUs, timing, jitter, noise) follows from it.
        width: Frame width in pixels.
        height: Frame height in pixels.
        label_noise: Probability that a clip's emotion label is replaced by a random one.
        frames: Range of clip lengths (onset to offset, inclusive).
        amplitude: Largest AU displacement as a fraction of the frame's short side.
        noise: Standard deviation of the per-frame sensor noise (grey levels).
        progress: Called with ``(clips written, total clips)`` after each clip.
    """
    out = Path(out)
    rng = np.random.default_rng(seed)
    emotions = list(EMOTION_AUS)
    weights = np.array([EMOTION_AUS[e][0] for e in emotions])
    rows = []
    for si in range(1, subjects + 1):
        ident = make_identity(rng)
        tex = _texture(ident, height, width)
        subject = f"{si:02d}"
        for ci in range(1, clips_per_subject + 1):
            emotion = emotions[int(rng.choice(len(emotions), p=weights / weights.sum()))]
            tokens = _choose(rng, EMOTION_AUS[emotion][1])
            label = emotion
            if rng.random() < label_noise:
                label = emotions[int(rng.integers(len(emotions)))]
            n = int(rng.integers(frames[0], frames[1] + 1))
            onset = int(rng.integers(1, 200))
            apex_pos = int(rng.integers(max(2, n // 4), max(3, (2 * n) // 3)))
            intensity = float(rng.uniform(0.6, 1.0))
            prof = _profile(n, apex_pos) * intensity
            base_shift = rng.normal(0, 2.0, size=2)
            drift = np.cumsum(rng.normal(0, 0.15, size=(n, 2)), axis=0)
            name = f"EP{ci:02d}_{int(rng.integers(1, 10))}"
            folder = out / f"sub{subject}" / name
            folder.mkdir(parents=True, exist_ok=True)
            for t in range(n):
                act = {tok: float(prof[t]) for tok in tokens}
                frame = render_face(ident, act, height, width, tuple(base_shift + drift[t]), tex, amplitude)
                grain = rng.normal(0, noise, size=frame.shape)
                frame = np.clip(frame + grain, 0, 255).astype(np.uint8)
                cv2.imwrite(
                    str(folder / f"img{onset + t}.jpg"),
                    cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95],
                )
            rows.append(
                {
                    "Subject": subject,
                    "Filename": name,
                    "OnsetFrame": onset,
                    "ApexFrame": onset + apex_pos,
                    "OffsetFrame": onset + n - 1,
                    "Action Units": "+".join(tokens),
                    "Estimated Emotion": label,
                }
            )
            if progress is not None:
                progress(len(rows), subjects * clips_per_subject)
    sheet = out / SHEET_NAME
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=list(SHEET_COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(sheet, buf.getvalue())
    # What was generated, so that runs on another generation are named apart (mer.protocols.fingerprint).
    params = {
        "subjects": subjects,
        "clips_per_subject": clips_per_subject,
        "seed": seed,
        "width": width,
        "height": height,
        "label_noise": label_noise,
        "frames": frames,
        "amplitude": amplitude,
        "noise": noise,
    }
    atomic_write_json(out / SYNTH_PARAMS_FILE, synth_params(**params))
    return sheet


def _int_cell(value: str, column: str, row: int, sheet: Path, sample: str) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise AnnotationError(
            f"{sheet}: row {row} ({sample}), column {column}: not a frame number: {value!r}"
        ) from None


def parse_synthme(sheet: Path) -> ParseResult:
    """Read a SynthME coding sheet (CASME II columns, CSV).

    Raises:
        AnnotationError: a missing column or a row whose frame numbers cannot be read (file, row and
            column named).
    """
    sheet = Path(sheet)
    with open(sheet, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in SHEET_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AnnotationError(f"{sheet}: missing column(s) {missing}")
        records = list(reader)
    samples, issues = [], []
    for i, r in enumerate(records, start=2):  # row 1 is the header
        sid = f"sub{r['Subject']}/{r['Filename']}"
        onset = _int_cell(r["OnsetFrame"], "OnsetFrame", i, sheet, sid)
        apex = _int_cell(r["ApexFrame"], "ApexFrame", i, sheet, sid)
        offset = _int_cell(r["OffsetFrame"], "OffsetFrame", i, sheet, sid)
        if offset < onset:
            issues.append(
                ValidationIssue(i, sid, "OffsetFrame", f"offset {offset} before onset {onset}", fatal=True)
            )
            continue
        if not onset <= apex <= offset:
            issues.append(ValidationIssue(i, sid, "ApexFrame", f"apex {apex} outside [{onset}, {offset}]"))
        parsed = parse_au_cell(r["Action Units"])
        issues.extend(ValidationIssue(i, sid, "Action Units", w) for w in parsed.warnings)
        samples.append(
            Sample(
                dataset="synthme",
                subject=r["Subject"],
                sample_id=sid,
                source=f"sub{r['Subject']}/{r['Filename']}",
                onset=onset,
                apex=apex,
                offset=offset,
                emotion=canonical_emotion(r["Estimated Emotion"]),
                aus=parsed.aus,
                au_text=r["Action Units"],
                row=i,
            )
        )
    return ParseResult(samples, issues)


SYNTHME = register_dataset(
    DatasetSpec(
        name="synthme",
        title="SynthME (synthetic)",
        parse=parse_synthme,
        sheet_globs=(SHEET_NAME,),
        fps=200.0,
        licence="built in; no licence needed",
    )
)


def three_class_label(sample: Sample) -> str | None:
    """``loso-synth-3``'s class map: MER-CLIP's 3-class rule applied to SynthME's emotions."""
    return three_class(sample.emotion)
