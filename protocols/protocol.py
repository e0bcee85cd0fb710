"""Protocols: one string names one benchmark (dataset, class map, folds, metric task)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mer.errors import BadInputError, OptionValueError
from mer.protocols.sample import Sample
from mer.registry import Registry


@dataclass(frozen=True)
class Fold:
    """One train/test split of a protocol.

    Attributes:
        index: 0-based fold number (stable: LOSO folds are ordered by subject id).
        name: Display name ("sub05", "test-a").
        train: Row indices (into the protocol's sample list) to train on.
        test: Row indices to test on.
    """

    index: int
    name: str
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class Protocol:
    """An exactly defined benchmark.

    Attributes:
        name: Registry key ("loso-samm-3").
        dataset: Dataset registry key.
        classes: Class names in label-index order.
        label_of: Canonical emotion (or the whole sample) → class name, or None to drop the sample.
        kind: "loso" (leave one subject out) or "split" (fixed train/test, e.g. DFME test A).
        task: "emotion" (single-label) or "au" (multi-label AU detection).
        version: Bumped whenever the definition changes, recorded in every run.
        description: One line for ``mer protocols list``.
        split_field: For "split" protocols, the ``Sample.extras`` key holding the split name.
        train_splits: Split names used for training.
        test_split: Split name used for testing.
        reference: Where the definition comes from (paper table).
        targets_of: For task "au": a kept sample → its 0/1 target per class (AU) in ``classes`` order;
            ``label_of`` then only decides which samples are kept.
        part_of: For a composite benchmark, a subject (as in the predictions) → the source dataset it
            belongs to; metrics are then also reported per part (MEGC2019: CASME II, SAMM, SMIC), in
            ``parts`` order.
        parts: The parts' names in display order.
    """

    name: str
    dataset: str
    classes: tuple[str, ...]
    label_of: Callable[[Sample], str | None]
    kind: str = "loso"
    task: str = "emotion"
    version: int = 1
    description: str = ""
    split_field: str = "split"
    train_splits: tuple[str, ...] = ("train",)
    test_split: str = "test"
    reference: str = ""
    expected_folds: int | None = None
    extras: dict = field(default_factory=dict, hash=False, compare=False)
    targets_of: Callable[[Sample], np.ndarray] | None = field(default=None, compare=False)
    part_of: Callable[[str], str] | None = field(default=None, compare=False)
    parts: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def select(self, samples: Sequence[Sample]) -> tuple[list[Sample], np.ndarray]:
        """Keep the samples this protocol uses and give each its label index.

        Returns:
            The kept samples (sheet order) and their integer labels (``[N, K]`` 0/1 targets when the
            protocol has ``targets_of``).
        """
        if self.targets_of is not None:
            kept = [s for s in samples if self.label_of(s) is not None]
            rows = [np.asarray(self.targets_of(s), dtype=np.int64) for s in kept]
            return kept, np.stack(rows) if rows else np.zeros((0, self.num_classes), dtype=np.int64)
        index = {c: i for i, c in enumerate(self.classes)}
        kept, labels = [], []
        for s in samples:
            c = self.label_of(s)
            if c is None:
                continue
            if c not in index:
                raise ValueError(
                    f"protocol {self.name}: class {c!r} of sample {s.sample_id} not in {self.classes}"
                )
            kept.append(s)
            labels.append(index[c])
        return kept, np.asarray(labels, dtype=np.int64)

    def folds(self, samples: Sequence[Sample]) -> list[Fold]:
        """The folds over ``samples`` (already filtered by :meth:`select`)."""
        if self.kind == "loso":
            subjects = np.asarray([s.subject for s in samples])
            out = []
            for i, subj in enumerate(sorted(set(subjects.tolist()), key=_subject_key)):
                test = np.flatnonzero(subjects == subj)
                train = np.flatnonzero(subjects != subj)
                out.append(
                    # A composite's subject ("casme2/sub02") already names itself.
                    Fold(
                        i,
                        str(subj) if str(subj).startswith("sub") or "/" in str(subj) else f"sub{subj}",
                        train,
                        test,
                    )  # fmt: skip
                )
            return out
        if self.kind == "split":
            splits = np.asarray([str(s.extras.get(self.split_field, "")) for s in samples])
            train = np.flatnonzero(np.isin(splits, list(self.train_splits)))
            test = np.flatnonzero(splits == self.test_split)
            if len(test) == 0:
                raise BadInputError(f"protocol {self.name}: no sample in split {self.test_split!r}")
            return [Fold(0, self.test_split, train, test)]
        raise ValueError(f"protocol {self.name}: unknown kind {self.kind!r}")


def _subject_key(subject: str) -> tuple[int, str]:
    """Order subjects numerically when they are numbers ("2" before "10"), else as text."""
    digits = "".join(ch for ch in str(subject) if ch.isdigit())
    return (int(digits) if digits else 1 << 30, str(subject))


PROTOCOLS: Registry[Protocol] = Registry("protocol")


def register_protocol(p: Protocol) -> Protocol:
    """Add ``p`` to :data:`PROTOCOLS`."""
    PROTOCOLS.register(p.name, p)
    return p


def parse_folds(spec: str | None, n_folds: int) -> list[int]:
    """Parse ``--folds`` ("0,3-5") into sorted fold indices; None or "" means all.

    Raises:
        OptionValueError: malformed text, a descending range ("3-1"), an index outside
            ``[0, n_folds)``, or no fold at all.
    """
    if spec is None or not str(spec).strip():
        return list(range(n_folds))
    out: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            a, b = (int(x) for x in part.split("-", 1)) if "-" in part[1:] else (int(part), int(part))
        except ValueError:
            raise OptionValueError(f"--folds: cannot read {part!r} (use e.g. 0,3-5)") from None
        if b < a:
            raise OptionValueError(f"--folds: range {part!r} runs backwards (write {b}-{a})")
        bad = [i for i in (a, b) if not 0 <= i < n_folds]
        if bad:
            raise OptionValueError(f"--folds: fold(s) {sorted(set(bad))} outside 0..{n_folds - 1}")
        out.update(range(a, b + 1))
    if not out:
        raise OptionValueError(f"--folds: {spec!r} names no fold")
    return sorted(out)
