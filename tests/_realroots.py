"""Dataset roots laid out like the real datasets, made from SynthME frames (test helper, not a test).

SynthME writes ``sub01/EP01_3/img12.jpg`` plus a CSV sheet; these functions re-lay the same frames
(hard links, so it is cheap) the way CASME II, SAMM and CAS(ME)³ ship them, each with a sheet in that
dataset's own format, so that the real parsers, layouts and preparation run end to end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
from openpyxl import Workbook

from mer.protocols.layouts import list_frames
from mer.protocols.sample import Sample
from mer.protocols.synthme import parse_synthme, write_synthme


def make_synth(out: Path, subjects: int = 4, clips: int = 5, size: int = 64, seed: int = 0) -> list[Sample]:
    """Write a small SynthME under ``out`` and return its samples."""
    sheet = write_synthme(out, subjects=subjects, clips_per_subject=clips, seed=seed, width=size, height=size)
    return parse_synthme(sheet).samples


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _frames(synth_root: Path, s: Sample) -> dict[int, Path]:
    return list_frames(synth_root / s.source)


def as_casme2(
    synth_root: Path, samples: list[Sample], out: Path, variant: str = "CASME2_RAW_selected"
) -> Path:
    """CASME II: ``<variant>/sub01/EP01_3/img<n>.jpg`` (Cropped: ``reg_img<n>.jpg``) + the 2019 sheet."""
    prefix = "reg_img" if variant == "Cropped" else "img"
    wb = Workbook()
    ws = wb.active
    ws.append(
        [
            "Subject",
            "Filename",
            None,
            "OnsetFrame",
            "ApexFrame",
            "OffsetFrame",
            None,
            "Action Units",
            "Estimated Emotion",
            "Objective Classes",
        ]
    )
    for s in samples:
        for n, p in _frames(synth_root, s).items():
            _link(p, out / variant / s.source / f"{prefix}{n}.jpg")
        ws.append(
            [
                s.subject,
                s.sample_id.split("/")[1],
                None,
                s.onset,
                s.apex,
                s.offset,
                None,
                s.au_text,
                s.emotion,
                1,
            ]
        )
    sheet = out / "CASME2-coding-20190701.xlsx"
    wb.save(sheet)
    return sheet


def as_samm(synth_root: Path, samples: list[Sample], out: Path) -> Path:
    """SAMM: ``SAMM/006/006_1_2/006_05562.jpg`` (frames renumbered +5000) + a MICRO_ONLY sheet."""
    rows = []
    for k, s in enumerate(samples):
        subj = f"0{s.subject}"  # "01" → "001"
        name = f"{subj}_{k % 7 + 1}_{k + 1}"
        for n, p in _frames(synth_root, s).items():
            _link(p, out / "SAMM" / subj / name / f"{subj}_{n + 5000:05d}.jpg")
        emotion = s.emotion.capitalize().replace("Others", "Other")
        rows.append((subj, name, s.onset + 5000, s.apex + 5000, s.offset + 5000, s.au_text, emotion))
    return samm_sheet(rows, out)


def samm_sheet(rows: list[tuple], out: Path) -> Path:
    """A SAMM MICRO_ONLY sheet under ``out``; a row is (subject, filename, onset, apex, offset, AUs,
    emotion)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "MICRO_ONLY"
    for _ in range(13):
        ws.append(["notes"])
    ws.append(
        [
            "Subject",
            "Filename",
            "Inducement Code",
            "Onset Frame",
            "Apex Frame",
            "Offset Frame",
            "Duration",
            "Micro",
            "Action Units",
            "Estimated Emotion",
            "Objective Classes",
            "Notes",
        ]
    )
    for subj, name, onset, apex, offset, aus, emotion in rows:
        ws.append(
            [subj, name, 1, onset, apex, offset, offset - onset + 1, "Micro - 1/2", aus, emotion, 3, None]
        )
    sheet = out / "SAMM_Micro_FACS_Codes_v2.xlsx"
    wb.save(sheet)
    return sheet


def as_casme3(synth_root: Path, samples: list[Sample], out: Path) -> Path:
    """CAS(ME)³ Part A: ``part_A/spNO.1/a/color/<n>.jpg``; each clip holds two samples (its halves)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "label"
    ws.append(["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"])
    letters = "abcdefghijklm"
    for k, s in enumerate(samples):
        subj, clip = f"spNO.{int(s.subject)}", letters[k % len(letters)]
        for n, p in _frames(synth_root, s).items():
            _link(p, out / "part_A" / subj / clip / "color" / f"{n}.jpg")
        mid = (s.onset + s.offset) // 2
        emotion = {"happiness": "happy", "sadness": "sad"}.get(s.emotion, s.emotion)
        ws.append([subj, clip, str(s.onset), str(s.apex), str(s.offset), s.au_text, "I", emotion])
        ws.append([subj, clip, str(mid), str(mid + 1), str(s.offset), s.au_text, "I", emotion])
    sheet = out / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
    wb.save(sheet)
    return sheet


def write_video(frames: dict[int, Path], path: Path, fps: float = 30.0) -> Path:
    """The frames as an MP4 (``mp4v``); video frame i is the i-th frame in number order."""
    first = cv2.imread(str(next(iter(frames.values()))))
    h, w = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for p in frames.values():
        writer.write(cv2.imread(str(p)))
    writer.release()
    return path
