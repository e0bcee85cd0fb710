"""The checks the Hugging Face Hub applies to a README's YAML front matter, for the loopback hub.

The Hub refuses a commit whose ``README.md`` metadata does not validate (and ``/api/validate-yaml`` answers
the same). Written from the Hub's documentation of model cards (``model-index``, ``license: other`` with
``license_name`` / ``license_link``, ``base_model``) and of Spaces' configuration (``sdk``, ``colorFrom``,
``short_description``...), as far as mer uses them.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

LICENSES = {"apache-2.0", "mit", "other", "cc-by-4.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
            "bsd-3-clause", "gpl-3.0", "openrail", "unknown"}  # fmt: skip
PIPELINE_TAGS = {"video-classification", "image-classification", "zero-shot-image-classification",
                 "feature-extraction", "other"}  # fmt: skip
SDKS = {"gradio", "streamlit", "docker", "static"}
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
LICENSE_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def front_matter(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The parsed front matter of a README (None when it has none) and parse errors."""
    if not text.startswith("---\n"):
        return None, []
    end = text.find("\n---", 4)
    if end < 0:
        return None, ["front matter is not closed by ---"]
    try:
        data = yaml.safe_load(text[4:end])
    except yaml.YAMLError as e:
        return None, [f"YAML does not parse: {e}"]
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return None, ["front matter is not a mapping"]
    return data, []


def _strings(meta: dict[str, Any], key: str, errors: list[str]) -> None:
    value = meta.get(key)
    if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        errors.append(f'"{key}" must be an array of strings')


def _model_index(index: Any, errors: list[str]) -> None:
    if not isinstance(index, list) or not index:
        errors.append('"model-index" must be a non-empty array')
        return
    for i, model in enumerate(index):
        where = f"model-index[{i}]"
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            errors.append(f'{where}: "name" (string) is required')
            continue
        results = model.get("results")
        if not isinstance(results, list) or not results:
            errors.append(f'{where}: "results" must be a non-empty array')
            continue
        for j, res in enumerate(results):
            w = f"{where}.results[{j}]"
            task, data, metrics = (
                res.get(k) if isinstance(res, dict) else None for k in ("task", "dataset", "metrics")
            )
            if not isinstance(task, dict) or not isinstance(task.get("type"), str):
                errors.append(f'{w}.task: "type" (string) is required')
            if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("type", "name")):
                errors.append(f'{w}.dataset: "type" and "name" (strings) are required')
            if not isinstance(metrics, list) or not metrics:
                errors.append(f'{w}: "metrics" must be a non-empty array')
                continue
            for k, m in enumerate(metrics):
                ok = isinstance(m, dict) and isinstance(m.get("type"), str)
                ok = (
                    ok
                    and isinstance(m.get("value"), (int, float, str))
                    and not isinstance(m.get("value"), bool)
                )
                if not ok:
                    errors.append(
                        f'{w}.metrics[{k}]: "type" (string) and "value" (number or string) are required'
                    )


def validate(meta: dict[str, Any], repo_type: str) -> list[str]:
    """What the Hub would object to in ``meta`` (empty: valid)."""
    errors: list[str] = []
    licence = meta.get("license")
    if licence is not None:
        if not isinstance(licence, str) or licence not in LICENSES:
            errors.append(f'"license" must be one of the Hub\'s licence ids, not {licence!r}')
        elif licence == "other":
            name, link = meta.get("license_name"), meta.get("license_link")
            if not isinstance(name, str) or not LICENSE_NAME.match(name):
                errors.append('"license: other" needs "license_name" (lowercase letters, digits, "-", ".")')
            if not isinstance(link, str) or not link:
                errors.append('"license: other" needs "license_link"')
    for key in ("tags", "metrics", "datasets"):
        _strings(meta, key, errors)
    base = meta.get("base_model")
    if base is not None:
        bases = base if isinstance(base, list) else [base]
        if not all(isinstance(b, str) and REPO_ID.match(b) for b in bases):
            errors.append(f'"base_model" must be a Hub repository id or a list of them, not {base!r}')
    if "pipeline_tag" in meta and meta["pipeline_tag"] not in PIPELINE_TAGS:
        errors.append(f'"pipeline_tag" {meta["pipeline_tag"]!r} is not a known task')
    if "model-index" in meta:
        _model_index(meta["model-index"], errors)
    if repo_type == "space":
        if meta.get("sdk") not in SDKS:
            errors.append(f'"sdk" must be one of {sorted(SDKS)}')
        for key in ("colorFrom", "colorTo"):
            if key in meta and meta[key] not in COLOURS:
                errors.append(f'"{key}" must be one of {sorted(COLOURS)}')
        if "pinned" in meta and not isinstance(meta["pinned"], bool):
            errors.append('"pinned" must be a boolean')
        if len(str(meta.get("short_description", ""))) > 60:
            errors.append('"short_description" is longer than 60 characters')
        if "app_file" in meta and not isinstance(meta["app_file"], str):
            errors.append('"app_file" must be a string')
    return errors


def check_readme(text: str, repo_type: str) -> list[str]:
    """Errors of a README's front matter as the Hub reports them on commit."""
    meta, errors = front_matter(text)
    if errors:
        return errors
    if meta is None:
        return ['a Space\'s README.md needs YAML front matter with "sdk"'] if repo_type == "space" else []
    return validate(meta, repo_type)
