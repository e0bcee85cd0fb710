"""Canonical emotion names: every sheet's spelling folded to one word."""

from __future__ import annotations

# Case-folded spelling → canonical name. The sheets write "Other", "others", "Others", "happy",
# "happiness", "sad", "sadness"; the protocols speak of the canonical names only.
SYNONYMS: dict[str, str] = {
    "happy": "happiness",
    "happiness": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "other": "others",
    "others": "others",
    "anger": "anger",
    "angry": "anger",
    "contempt": "contempt",
    "disgust": "disgust",
    "fear": "fear",
    "repression": "repression",
    "surprise": "surprise",
    "negative": "negative",
    "positive": "positive",
}

#: Every emotion name a sheet may carry once folded; anything else is a typo or a private label.
KNOWN = frozenset(SYNONYMS.values())

NEGATIVE = frozenset({"anger", "contempt", "disgust", "fear", "repression", "sadness"})


def canonical_emotion(text: object) -> str:
    """Fold a sheet's emotion cell to its canonical name (unknown words are kept, lower-cased)."""
    word = str(text).strip().lower()
    return SYNONYMS.get(word, word)


def is_known_emotion(emotion: str) -> bool:
    """True for a canonical emotion name (:data:`KNOWN`)."""
    return emotion in KNOWN


def three_class(emotion: str) -> str | None:
    """MER-CLIP's 3-class map: negative ∪, positive = happiness, surprise; "others" is dropped."""
    if emotion in NEGATIVE or emotion == "negative":
        return "negative"
    if emotion in ("happiness", "positive"):
        return "positive"
    if emotion == "surprise":
        return "surprise"
    return None
