import numpy as np
import pytest
from _synth import small_synth

from mer.protocols.layouts import FrameError
from mer.protocols.prepare import Recipe, prepare
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.sampling import keyframe_indices
from mer.registrations import load_all

load_all()
RECIPE = Recipe(frames=8, size=32)


def test_prepare_writes_cache_and_second_call_is_noop(tmp_path):
    root = small_synth(tmp_path / "synth", subjects=2, clips=3)
    first = prepare("synthme", root, RECIPE)
    assert first.created and first.store.shape == (6, 8, 32, 32, 3) and first.store.dtype == np.uint8
    stamp = (first.path / "frames.npy").stat().st_mtime_ns
    second = prepare("synthme", root, RECIPE)
    assert not second.created and second.path == first.path
    assert (second.path / "frames.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(np.asarray(first.store), np.asarray(second.store))
    # Another recipe is another cache.
    assert prepare("synthme", root, Recipe(frames=8, size=24)).path != first.path


def test_prepared_frames_are_the_key_frames(tmp_path):
    import cv2

    root = small_synth(tmp_path / "synth", subjects=1, clips=2)
    prep = prepare("synthme", root, Recipe(frames=8, size=64))  # 64x64 frames: no resize
    s = prep.samples[0]
    numbers = keyframe_indices(s.onset, s.apex, s.offset, 8)
    for pos in (0, 3, 4, 7):  # onset, apex (end of first half, start of second), offset
        img = cv2.cvtColor(cv2.imread(str(root / s.source / f"img{numbers[pos]}.jpg")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(prep.store[0, pos], img)


def test_clipset_labels_follow_protocol(tmp_path):
    root = small_synth(tmp_path / "synth", subjects=3, clips=6)
    prep = prepare("synthme", root, RECIPE)
    proto = PROTOCOLS.get("loso-synth-3")
    clips = prep.clipset(proto)
    assert len(clips) == sum(s.emotion != "others" for s in prep.samples)
    for s, y in zip(clips.samples, clips.labels, strict=True):
        expected = (
            "positive" if s.emotion == "happiness" else "surprise" if s.emotion == "surprise" else "negative"
        )
        assert proto.classes[y] == expected
    folds = proto.folds(clips.samples)
    assert [f.name for f in folds] == sorted({f"sub{s.subject}" for s in clips.samples})


def test_deleted_frame_stops_prepare_naming_it(tmp_path):
    root = small_synth(tmp_path / "synth", subjects=2, clips=2)
    from mer.protocols.synthme import parse_synthme

    s = parse_synthme(root / "SynthME-coding.csv").samples[1]
    victim = root / s.source / f"img{s.apex}.jpg"
    victim.unlink()
    with pytest.raises(FrameError, match=rf"frame {s.apex} of sample {s.sample_id} \(sheet row 3\)"):
        prepare("synthme", root, RECIPE)


def test_corrupt_frame_names_the_file(tmp_path):
    root = small_synth(tmp_path / "synth", subjects=1, clips=1)
    from mer.protocols.synthme import parse_synthme

    s = parse_synthme(root / "SynthME-coding.csv").samples[0]
    bad = root / s.source / f"img{s.onset}.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(FrameError, match="unreadable image") as e:
        prepare("synthme", root, RECIPE)
    assert str(bad) in str(e.value)


def test_failed_prepare_keeps_an_earlier_cache(tmp_path):
    root = small_synth(tmp_path / "synth", subjects=1, clips=2)
    good = prepare("synthme", root, RECIPE)
    frame = next((root / good.samples[0].source).glob("*.jpg"))
    frame.unlink()
    # The existing cache is still served (same sheet + recipe + root), nothing is lost.
    again = prepare("synthme", root, RECIPE)
    assert again.path == good.path and (good.path / "meta.json").exists()
