"""Protocols on the embedded SynthME benchmark."""

from __future__ import annotations

from mer.protocols.protocol import Protocol, register_protocol
from mer.protocols.synthme import three_class_label

LOSO_SYNTH_3 = register_protocol(
    Protocol(
        name="loso-synth-3",
        dataset="synthme",
        classes=("negative", "positive", "surprise"),
        label_of=three_class_label,
        kind="loso",
        description="SynthME, leave one subject out, 3 classes (MER-CLIP's negative/positive/surprise map)",
        reference="SPEC D",
    )
)
