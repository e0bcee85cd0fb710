"""Emotion-label-free MER (SPEC B.3.7, assumed): emotions from predicted AUs, no emotion label seen.

Two scorers, both reading only the AU detector's output:

- ``rule``: FACS / EMFACS-style prototypes (:data:`EMOTION_PROTOTYPES`). A prototype is an AU set; it
  scores the predicted AU probabilities by the Bernoulli log-likelihood of "exactly these AUs of the
  vocabulary present" (so both the AUs it needs and the AUs it excludes count). An emotion scores its
  best prototype, a protocol class its best emotion (3-class "negative" = the best negative emotion),
  and the class probabilities are the softmax of those log-likelihoods.
- ``prompts``: the same prototypes written as emotion prompts composed of AU phrases (MER-CLIP's
  description rule, "a combination of raising the cheeks and pulling the corners of the lips", in the
  seven templates), scored by cosine similarity with the model's global embedding.

The prototypes are a simplified EMFACS table (Ekman & Friesen), restricted to the AUs micro-expression
sheets code, plus CASME II's own coding of "repression" (lip AUs 14/15/17/24). SynthME's generator pairs
AUs and emotions the same textbook way, so label-free scores on SynthME are optimistic about real data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer.errors import OptionValueError
from mer.protocols.emotions import NEGATIVE

EMOTION_PROTOTYPES: dict[str, tuple[tuple[int, ...], ...]] = {
    "happiness": ((12,), (6, 12)),
    "surprise": ((1, 2), (1, 2, 5), (1, 2, 25), (1, 2, 26), (1, 2, 5, 26)),
    "anger": ((4, 7), (4, 5, 7), (4, 7, 23), (4, 7, 24), (4, 5, 7, 23)),
    "disgust": ((9,), (10,), (4, 9), (4, 10), (9, 15, 16), (10, 17)),
    "fear": ((1, 2, 4), (1, 2, 4, 5), (1, 2, 4, 5, 20), (1, 2, 4, 5, 20, 25)),
    "sadness": ((1, 4), (1, 15), (1, 4, 15), (6, 15), (1, 4, 15, 17)),
    "contempt": ((14,), (12, 14)),  # unilateral (R12A + R14A) in EMFACS; sides are merged here
    "repression": ((14,), (15,), (17,), (24,), (17, 24), (14, 17)),
    "others": ((),),  # no AU of the vocabulary: nothing emotion-specific was seen
}


def class_emotions(cls: str) -> tuple[str, ...]:
    """The prototype emotions behind a protocol class ("negative" → every negative emotion).

    Raises:
        ValueError: a class with no prototype.
    """
    if cls == "negative":
        return tuple(sorted(NEGATIVE))
    if cls == "positive":
        return ("happiness",)
    if cls in EMOTION_PROTOTYPES:
        return (cls,)
    raise OptionValueError(
        f"no AU prototype for emotion class {cls!r}; known: {', '.join(EMOTION_PROTOTYPES)}"
    )


def class_prototypes(classes: Sequence[str], vocabulary: Sequence[int]) -> list[list[tuple[int, ...]]]:
    """Per class, its distinct prototypes restricted to the AU ``vocabulary`` the detector knows.

    A prototype that loses every AU to the restriction is dropped (it would read as "no AU"), except
    the empty prototype of "others"; a class can end with none (it is then never predicted).
    """
    vocab = set(vocabulary)
    out = []
    for cls in classes:
        protos: list[tuple[int, ...]] = []
        for emotion in class_emotions(cls):
            for proto in EMOTION_PROTOTYPES[emotion]:
                kept = tuple(a for a in proto if a in vocab)
                if (kept or not proto) and kept not in protos:
                    protos.append(kept)
        out.append(protos)
    return out


def rule_scores(au_probs: np.ndarray, vocabulary: Sequence[int], classes: Sequence[str]) -> np.ndarray:
    """``[N, C]`` log-likelihood of each class's best prototype given ``[N, K]`` AU probabilities.

    A class with no prototype over this vocabulary scores ``-inf``.
    """
    p = np.clip(np.asarray(au_probs, np.float64), 1e-4, 1 - 1e-4)
    index = {a: i for i, a in enumerate(vocabulary)}
    scores = np.full((p.shape[0], len(classes)), -np.inf)
    for c, protos in enumerate(class_prototypes(classes, vocabulary)):
        for proto in protos:
            m = np.zeros(len(vocabulary), bool)
            m[[index[a] for a in proto]] = True
            ll = np.log(np.where(m, p, 1 - p)).sum(1)
            scores[:, c] = np.maximum(scores[:, c], ll)
    return scores


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Row softmax that tolerates ``-inf`` entries (a row of all ``-inf`` becomes uniform)."""
    s = np.asarray(scores, np.float64)
    finite = np.isfinite(s)
    top = np.where(finite, s, -np.inf).max(1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(finite, np.exp(s - top), 0.0)
    total = e.sum(1, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1), 1.0 / s.shape[1])
