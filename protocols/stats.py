"""``mer data stats``: what a sheet holds under a protocol, from the sheet alone (no images needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import mer.protocols.real  # noqa: F401  (registers the real datasets and protocols; sheet parsers only)
from mer.errors import OptionValueError
from mer.protocols.datasets import DATASETS
from mer.protocols.protocol import PROTOCOLS
from mer.protocols.sample import AnnotationError, ValidationIssue
from mer.protocols.selection import selection_report


def _issue_dict(issue: ValidationIssue) -> dict[str, Any]:
    problem = f"unusable: {issue.problem}" if issue.fatal else issue.problem
    return {"row": issue.row, "sample": issue.sample, "field": issue.field, "problem": problem}


def dataset_stats(dataset: str, annotations: Path, protocol: str | None = None) -> dict[str, Any]:
    """Samples per class, subjects, folds and the validation report of one annotation file.

    Args:
        dataset: Dataset registry name ("samm").
        annotations: The sheet (or, for DFME, the folder of lists).
        protocol: Protocol name; None counts every usable sample by its emotion, with no folds.

    Returns:
        ``{"protocol", "n_samples", "class_counts", "n_subjects", "n_folds", "issues"}``; split
        protocols add ``"split_counts"`` (samples per split). ``class_counts`` follows the protocol's
        class order. A fold count that differs from the protocol's expected one is reported as an issue.

    Raises:
        RegistryError: unknown dataset or protocol.
        AnnotationError: unreadable sheet, or no usable sample (under ``protocol``).
        ValueError: the protocol belongs to another dataset.
    """
    spec = DATASETS.get(dataset)
    parsed = spec.parse(Path(annotations))
    issues = [_issue_dict(i) for i in parsed.issues]
    samples = parsed.samples
    if protocol is None:
        counts = Counter(s.emotion for s in samples)
        return {
            "protocol": None,
            "n_samples": len(samples),
            "class_counts": dict(sorted(counts.items())),
            "n_subjects": len({s.subject for s in samples}),
            "n_folds": None,
            "issues": issues,
        }
    proto = PROTOCOLS.get(protocol)
    if proto.dataset != dataset:
        raise OptionValueError(
            f"protocol {protocol!r} is defined on dataset {proto.dataset!r}, not {dataset!r}"
        )
    kept, labels = proto.select(samples)
    if not kept:
        found = ", ".join(sorted(Counter(s.emotion for s in samples))) or "none"
        raise AnnotationError(
            f"{annotations}: no sample of {protocol}'s classes ({', '.join(proto.classes)}); "
            f"the sheet's emotions: {found}"
        )
    # AU protocols give [N, K] 0/1 targets: a class count is then the AU's positives.
    if labels.ndim == 1:
        counts = Counter(int(x) for x in labels)
    else:
        counts = Counter(dict(enumerate(labels.sum(0).tolist())))
    for c in selection_report(proto, samples).empty_classes:
        issues.append({"row": None, "sample": "", "field": "class", "problem": f"class {c!r} has no sample"})
    folds = proto.folds(kept) if kept else []
    if proto.expected_folds is not None and len(folds) != proto.expected_folds:
        issues.append(
            {
                "row": None,
                "sample": "",
                "field": "folds",
                "problem": f"{len(folds)} folds where {protocol} defines {proto.expected_folds}",
            }
        )
    out: dict[str, Any] = {
        "protocol": protocol,
        "n_samples": len(kept),
        "class_counts": {c: counts.get(i, 0) for i, c in enumerate(proto.classes)},
        "n_subjects": len({s.subject for s in kept}),
        "n_folds": len(folds),
        "issues": issues,
    }
    if proto.kind == "split":
        out["split_counts"] = dict(Counter(str(s.extras.get(proto.split_field, "")) for s in kept))
    return out


def format_stats(stats: dict[str, Any], dataset: str = "") -> str:
    """The human-readable form of :func:`dataset_stats`."""
    lines = []
    title = f"{dataset} " if dataset else ""
    proto = stats["protocol"] or "(no protocol: every sample by emotion)"
    lines.append(
        f"{title}{proto}: {stats['n_samples']} samples, {stats['n_subjects']} subjects"
        + (f", {stats['n_folds']} folds" if stats["n_folds"] is not None else "")
    )
    width = max((len(c) for c in stats["class_counts"]), default=0)
    for c, n in stats["class_counts"].items():
        lines.append(f"  {c:<{width}}  {n:>5}")
    for split, n in stats.get("split_counts", {}).items():
        lines.append(f"  split {split}: {n}")
    issues = stats["issues"]
    lines.append(f"validation: {len(issues)} issue(s)" if issues else "validation: no issue")
    for i in issues:
        where = f"row {i['row']}" if i["row"] is not None else "sheet"
        lines.append(f"  {where} ({i['sample'] or '-'}) {i['field']}: {i['problem']}")
    return "\n".join(lines)


def stats_report(dataset: str, annotations: Path, protocol: str | None = None, as_json: bool = False) -> str:
    """What ``mer data stats`` prints: the JSON form (``--json``) or the text form."""
    stats = dataset_stats(dataset, annotations, protocol)
    if as_json:
        return json.dumps(stats, indent=2)
    return format_stats(stats, dataset)
