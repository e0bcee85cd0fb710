"""The model zoo on the Hugging Face Hub: catalogue, references, pull, push and the local cache.

Everything goes through ``huggingface_hub`` and its cache, so a model pulled once is available offline
(``HF_HUB_OFFLINE=1``) afterwards. Only :func:`pull` and :func:`push` may reach the network; loading a
model (:func:`mer.zoo.artifact.load_artifact`, ``--init``) reads the cache and, when the model is not
there, names the ``mer zoo pull`` command that fetches it.

``HF_ENDPOINT``, ``HF_HUB_CACHE`` / ``HF_HOME`` are read when a function is called (not when the module is
imported), so a mirror or a test server can be chosen at any time. The token comes from ``HF_TOKEN`` or
``hf auth login`` (``huggingface_hub.get_token``); mer passes it to the client and never writes it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mer import errors
from mer.errors import MissingInputError, OptionValueError
from mer.zoo.artifact import (
    ARTIFACT_FILES,
    FORMAT,
    ArtifactConfig,
    IntegrityError,
    export_run,
    read_config,
    verify_artifact,
)

CATALOGUE_FILE = Path(__file__).with_name("catalogue.json")
REF_PREFIXES = ("hf-hub:", "local-dir:", "run:")


class HubError(errors.HubError, ValueError):
    """A pull or push that cannot be done (no token, offline, repository or revision not found)."""


class NotCachedError(errors.HubError, FileNotFoundError):
    """A model that is not in the local Hugging Face cache; the message names the command that fetches it."""


# ---------------------------------------------------------------------------------------- catalogue


@dataclass(frozen=True)
class CatalogueEntry:
    """One named model of ``zoo/catalogue.json``.

    Attributes:
        name: Short name (``mer zoo pull NAME``).
        kind: ``mer`` (a mer artifact repository) or ``open_clip`` (pretrained weights open_clip loads).
        repo_id: Hub repository.
        revision: Pinned commit or tag (None: ``main``).
        description: One line.
        protocol: Protocol the model was trained under (mer artifacts).
        metrics: Headline metrics of its run.
        weights_sha256: Hash of ``model.safetensors``, checked on load in addition to the artifact's own.
        published: False for an entry that is announced but not public yet.
        open_clip_model: open_clip architecture (``open_clip`` kind); ``open_clip_pretrained`` its tag.
        init: What ``--init NAME`` passes to the builder (``clip`` for the CLIP entry).
        filename: The one file of ``repo_id`` (``checkpoint`` kind: third-party weights mer converts,
            :mod:`mer.zoo.checkpoints`).
        bytes: Its size, checked after download.
        size: The mer model size the weights fit (``base``).
        converter: The converter of :mod:`mer.zoo.convert` that maps them (``uniformerv2``).
    """

    name: str
    kind: str = "mer"
    repo_id: str | None = None
    revision: str | None = None
    description: str = ""
    protocol: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None
    published: bool = False
    open_clip_model: str | None = None
    open_clip_pretrained: str | None = None
    init: str | None = None
    filename: str | None = None
    bytes: int | None = None
    size: str | None = None
    converter: str | None = None


def load_catalogue(path: Path | None = None) -> list[CatalogueEntry]:
    """Entries of the catalogue data file."""
    path = Path(path or CATALOGUE_FILE)
    data = json.loads(path.read_text())
    known = set(CatalogueEntry.__dataclass_fields__)
    return [CatalogueEntry(**{k: v for k, v in e.items() if k in known}) for e in data.get("models", [])]


def catalogue_entry(name: str, path: Path | None = None) -> CatalogueEntry | None:
    """The entry called ``name``, or None."""
    return next((e for e in load_catalogue(path) if e.name == name), None)


# ------------------------------------------------------------------------------------------ settings


def hf_endpoint() -> str | None:
    """``HF_ENDPOINT`` now (None: the library's default, huggingface.co)."""
    value = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/")
    return value or None


def hf_cache_dir() -> str:
    """The Hugging Face hub cache now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``, else the library default."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return constants.HF_HUB_CACHE


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` forbids network access (as the library sees it)."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


# ---------------------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Ref:
    """A parsed model reference.

    Attributes:
        kind: ``hf-hub``, ``local-dir``, ``run``, ``open_clip`` or ``checkpoint`` (a catalogue file).
        target: Repository id, folder, run id / path, or open_clip ``model:pretrained``.
        revision: Hub revision (``hf-hub`` only).
        name: What the user typed (used in messages and in the ``mer zoo pull`` hint).
        entry: The catalogue entry, when the reference is a catalogue name.
    """

    kind: str
    target: str
    revision: str | None = None
    name: str = ""
    entry: CatalogueEntry | None = None


def parse_ref(text: str) -> Ref:
    """``hf-hub:org/name[@rev]``, ``local-dir:/path``, ``run:RUN_ID``, a catalogue name, an artifact folder
    or ``org/name[@rev]``.

    Raises:
        ValueError: the text is none of these (the message lists the forms).
    """
    text = text.strip()
    if text.startswith("hf-hub:"):
        repo, _, rev = text[len("hf-hub:") :].partition("@")
        return Ref("hf-hub", repo, rev or None, text)
    if text.startswith("local-dir:"):
        return Ref("local-dir", os.path.expanduser(text[len("local-dir:") :]), None, text)
    if text.startswith("run:"):
        return Ref("run", text[len("run:") :], None, text)
    name, _, rev = text.partition("@")
    entry = catalogue_entry(name)
    if entry is not None:
        if entry.kind == "open_clip":
            return Ref(
                "open_clip", f"{entry.open_clip_model}:{entry.open_clip_pretrained}", None, text, entry
            )
        if not entry.repo_id:
            raise HubError(f"{name} is in the catalogue but not published yet")
        kind = "checkpoint" if entry.kind == "checkpoint" else "hf-hub"
        return Ref(kind, entry.repo_id, rev or entry.revision, text, entry)
    if Path(text).expanduser().is_dir():
        return Ref("local-dir", str(Path(text).expanduser()), None, text)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return Ref("hf-hub", name, rev or None, text)
    raise OptionValueError(
        f"unknown model reference {text!r}: use a catalogue name (`mer zoo list`), "
        "hf-hub:org/name[@revision], local-dir:/path/to/artifact or run:RUN_ID"
    )


def pull_command(ref: Ref) -> str:
    """The command that puts ``ref`` into the local cache."""
    if ref.entry is not None:
        return f"mer zoo pull {ref.entry.name}" + (
            f" --revision {ref.revision}" if ref.revision != ref.entry.revision and ref.revision else ""
        )
    return f"mer zoo pull {ref.target}" + (f" --revision {ref.revision}" if ref.revision else "")


def _hub_call(ref: Ref, fn, *args: Any, **kwargs: Any) -> Any:
    """Run a huggingface_hub call and turn its errors into mer's clear ones."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return fn(*args, **kwargs)
    except RepositoryNotFoundError as e:
        raise HubError(
            f"no repository {ref.target} on {hf_endpoint() or 'the Hugging Face Hub'} (or it is "
            "private and no valid token was given: set HF_TOKEN or run `hf auth login`)"
        ) from e
    except RevisionNotFoundError as e:
        raise HubError(f"repository {ref.target} has no revision {ref.revision!r}") from e
    except LocalEntryNotFoundError as e:
        why = "HF_HUB_OFFLINE=1 forbids downloading it" if offline() else "it has not been pulled"
        raise NotCachedError(
            f"{ref.name or ref.target} is not in the local Hugging Face cache ({hf_cache_dir()}) and {why}; "
            f"fetch it once with `{'HF_HUB_OFFLINE=0 ' if offline() else ''}{pull_command(ref)}`"
        ) from e
    except HfHubHTTPError as e:
        raise HubError(f"{ref.target}: the Hub answered {e}") from e


def _snapshot(ref: Ref, local_only: bool, force_download: bool = False) -> Path:
    from huggingface_hub import snapshot_download

    path = _hub_call(
        ref,
        snapshot_download,
        ref.target,
        revision=ref.revision,
        cache_dir=hf_cache_dir(),
        endpoint=hf_endpoint(),
        allow_patterns=list(ARTIFACT_FILES),
        local_files_only=local_only,
        force_download=force_download,
    )
    return Path(path)


def resolve_local(ref: Ref) -> tuple[Path, str | None, str]:
    """An artifact folder on disk for ``ref``, without network access.

    Returns:
        ``(folder, catalogue_sha256, fix_hint)``.

    Raises:
        NotCachedError: a Hub model that was never pulled (names the ``mer zoo pull`` command).
    """
    if ref.kind == "local-dir":
        folder = Path(ref.target)
        if not folder.is_dir():
            raise MissingInputError(f"no artifact folder {folder}")
        return folder, None, ""
    if ref.kind == "hf-hub":
        folder = _snapshot(ref, local_only=True)
        hint = f"refetch it with `{pull_command(ref)} --force-download`"
        return folder, ref.entry.weights_sha256 if ref.entry else None, hint
    raise OptionValueError(f"{ref.name}: a {ref.kind} reference is not a mer artifact")


# ------------------------------------------------------------------------------------------ pull


@dataclass
class PullResult:
    """What :func:`pull` fetched (or found in the cache)."""

    name: str
    repo_id: str
    path: Path
    revision: str | None
    commit: str | None
    offline: bool
    config: ArtifactConfig | None = None
    sha256: str | None = None
    conversion: Any = None  # mer.zoo.convert.ConversionReport of a ``checkpoint`` entry


def _pull_open_clip(ref: Ref) -> PullResult:
    """Pretrained open_clip weights through open_clip's own Hub loading (into the same HF cache)."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    model, pretrained = ref.target.split(":", 1)
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    repo_id = os.path.split(cfg.get("hf_hub") or "")[0]  # "org/name/" or "org/name/file"
    if offline():
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            path = try_to_load_from_cache(repo_id, name, cache_dir=hf_cache_dir())
            if isinstance(path, str):
                return PullResult(ref.name, repo_id, Path(path), None, None, True)
        raise NotCachedError(
            f"{ref.name} ({repo_id}) is not in the local Hugging Face cache and HF_HUB_OFFLINE=1 "
            f"forbids downloading it; fetch it once with `HF_HUB_OFFLINE=0 {pull_command(ref)}`"
        )
    path = open_clip.pretrained.download_pretrained(cfg, cache_dir=hf_cache_dir())
    if not path:
        raise HubError(f"open_clip has no Hub weights for {model} / {pretrained}")
    return PullResult(ref.name, repo_id, Path(path), None, None, False)


def _forget_cached(ref: Ref) -> None:
    """Remove a cached snapshot's artifact files (links and their blobs) so that a re-download replaces
    them: huggingface_hub keeps an existing snapshot link even when it downloads the blob again."""
    try:
        folder = _snapshot(ref, local_only=True)
    except (NotCachedError, HubError):
        return
    unlink_cached(folder, ARTIFACT_FILES)


def unlink_cached(folder: Path, names) -> None:
    """Delete ``names`` of a cached snapshot folder: each link and the blob it points to."""
    for name in names:
        link = folder / name
        if link.is_symlink():
            blob = link.resolve()
            link.unlink()
            if blob.is_file():
                blob.unlink()
        elif link.is_file():
            link.unlink()


def pull(name: str, revision: str | None = None, force_download: bool = False) -> PullResult:
    """Put a model into the local Hugging Face cache and verify it.

    With ``HF_HUB_OFFLINE=1`` nothing is downloaded: a cached model is found and verified; an uncached one
    raises :class:`NotCachedError` naming the command that fetches it.

    Args:
        name: Catalogue name, ``hf-hub:org/name`` or ``org/name`` (``@revision`` allowed).
        revision: Branch, tag or commit (overrides ``@revision`` and the catalogue's pin).
        force_download: Download again even when cached (repairs a corrupted cache).

    Raises:
        IntegrityError: the downloaded weights do not match the hash recorded at push.
    """
    ref = parse_ref(name)
    if revision:
        ref = Ref(ref.kind, ref.target, revision, ref.name, ref.entry)
    if ref.kind == "open_clip":
        return _pull_open_clip(ref)
    if ref.kind == "checkpoint":
        from mer.zoo.checkpoints import pull_checkpoint

        got = pull_checkpoint(ref, offline(), force_download)
        commit = got.path.parent.name  # snapshots/<commit>/<file>
        return PullResult(
            ref.name, ref.target, got.path, ref.revision, commit, offline(), None, got.sha256, got.conversion
        )
    if ref.kind != "hf-hub":
        raise OptionValueError(
            f"{name}: only Hub models are pulled (local folders and runs are already here)"
        )
    is_offline = offline()
    if force_download and not is_offline:
        _forget_cached(ref)
    folder = _snapshot(ref, local_only=is_offline, force_download=force_download)
    config = verify_artifact(
        folder,
        ref.entry.weights_sha256 if ref.entry else None,
        f"refetch it with `{pull_command(ref)} --force-download`",
    )
    return PullResult(ref.name, ref.target, folder, ref.revision, folder.name, is_offline, config)


# ------------------------------------------------------------------------------------------ push


@dataclass
class PushResult:
    """Where :func:`push` put the artifact."""

    repo_id: str
    url: str
    commit: str
    config: ArtifactConfig


def push(
    run_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    fold: int | None = None,
    revision: str | None = None,
    token: str | None = None,
    message: str | None = None,
) -> PushResult:
    """Upload the artifact of a run (config.json, model.safetensors, README.md) in one commit.

    Args:
        run_dir: A finished run that kept weights (``--save-weights last``).
        repo_id: ``org/name``; created when missing (``private`` then applies).
        fold: Which fold's model (default the last saved; see :mod:`mer.zoo.artifact`).
        revision: Branch to commit to (default ``main``).
        token: Hub token (default ``HF_TOKEN`` or the one ``hf auth login`` stored); never written.
        message: Commit message.

    Raises:
        HubError: offline, no token, or the Hub refused.
    """
    with tempfile.TemporaryDirectory(prefix="mer-push-") as tmp:
        config = export_run(Path(run_dir), Path(tmp), fold, repo_id=repo_id, revision=revision)
        verify_artifact(Path(tmp))  # what goes up is what the hash says
        summary = message or (
            f"mer: {config.model}-{config.size} on {config.protocol} (run {config.run_id}, "
            f"fold {config.fold})"
        )
        url, oid = commit_files(
            repo_id,
            {f: Path(tmp) / f for f in ARTIFACT_FILES},
            message=summary,
            revision=revision,
            private=private,
            token=token,
        )
    return PushResult(repo_id, url, oid, config)


def commit_files(
    repo_id: str,
    files: dict[str, Path | bytes],
    *,
    message: str,
    repo_type: str = "model",
    revision: str | None = None,
    private: bool = False,
    token: str | None = None,
    space_sdk: str | None = None,
    prune: bool = False,
) -> tuple[str, str]:
    """Put ``files`` (path in the repository → local file or bytes) on the Hub in one commit.

    The repository is created when missing (``private`` and, for a Space, ``space_sdk`` then apply); a
    ``revision`` branch that does not exist yet is created from ``main`` first, as ``hf upload
    --revision`` does.

    Args:
        prune: Also delete the files the revision holds that are not in ``files`` (``.gitattributes``
            is kept), so the repository ends up holding exactly ``files``.

    Returns:
        ``(repository url, commit id)``.

    Raises:
        HubError: offline, no token, or the Hub refused (its message is kept).
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import RevisionNotFoundError

    if offline():
        raise HubError("pushing needs the network but HF_HUB_OFFLINE=1; run it with HF_HUB_OFFLINE=0")
    token = token or get_token()
    if not token:
        raise HubError("pushing needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    ref = Ref("hf-hub", repo_id, revision, repo_id)
    api = HfApi(endpoint=hf_endpoint(), token=token)
    url = _hub_call(
        ref,
        api.create_repo,
        repo_id,
        private=private,
        exist_ok=True,
        repo_type=repo_type,
        space_sdk=space_sdk,
    )
    if revision and revision != "main":
        try:
            api.repo_info(repo_id, repo_type=repo_type, revision=revision)
        except RevisionNotFoundError:
            _hub_call(ref, api.create_branch, repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    ops: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=src if isinstance(src, bytes) else str(src))
        for path, src in sorted(files.items())
    ]
    if prune:

        def files_now() -> list[str]:
            try:
                return api.list_repo_files(repo_id, repo_type=repo_type, revision=revision)
            except RevisionNotFoundError:  # a repository just created holds no commit yet
                return []

        present = _hub_call(ref, files_now)
        ops += [CommitOperationDelete(path_in_repo=p) for p in sorted(present) if p not in files
                and p != ".gitattributes"]  # fmt: skip
    try:
        info = _hub_call(
            ref, api.create_commit, repo_id, operations=ops, commit_message=message, revision=revision,
            repo_type=repo_type,
        )  # fmt: skip
    except ValueError as e:
        if isinstance(e, HubError) or "Invalid metadata" not in str(e):
            raise
        raise HubError(f"{repo_id}: the Hub refused README.md: {e}") from e  # a mer bug, said plainly
    return str(url), info.oid


# ------------------------------------------------------------------------------------------ cache


@dataclass
class CachedModel:
    """One revision of a model repository in the local Hugging Face cache."""

    repo_id: str
    commit: str
    refs: list[str]
    size_bytes: int
    path: Path
    mer_artifact: bool
    model: str = ""
    protocol: str = ""


def cache_listing() -> list[CachedModel]:
    """Model repositories in the local Hugging Face cache (mer artifacts marked)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hf_cache_dir())
    except CacheNotFound:
        return []
    rows = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            row = CachedModel(
                repo.repo_id,
                rev.commit_hash,
                sorted(rev.refs),
                rev.size_on_disk,
                Path(rev.snapshot_path),
                False,
            )
            try:
                cfg = read_config(row.path)
                row.mer_artifact, row.model, row.protocol = (
                    cfg.format == FORMAT,
                    f"{cfg.model}-{cfg.size}",
                    cfg.protocol,
                )
            except (FileNotFoundError, ValueError, IntegrityError):
                pass
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------- info


def describe(name: str, runs_dir: Path = Path("runs")) -> dict[str, Any]:
    """What is known about a model reference without network access (for ``mer zoo info``)."""
    from dataclasses import asdict

    from mer.zoo.artifact import artifact_from_run, run_path

    ref = parse_ref(name)
    out: dict[str, Any] = {
        "reference": name,
        "kind": ref.kind,
        "target": ref.target,
        "revision": ref.revision,
    }
    if ref.entry is not None:
        out["catalogue"] = asdict(ref.entry)
    if ref.kind == "run":
        config, weights = artifact_from_run(run_path(ref.target, runs_dir))
        out.update(config=asdict(config), path=str(weights))
    elif ref.kind == "open_clip":
        from huggingface_hub import try_to_load_from_cache

        repo = ref.entry.repo_id if ref.entry else ""
        paths = [
            try_to_load_from_cache(repo, f, cache_dir=hf_cache_dir())
            for f in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        ]
        cached = next((p for p in paths if isinstance(p, str)), None)
        out.update(cached=cached is not None, path=cached)
        if cached is None:
            out["fetch_with"] = pull_command(ref)
    elif ref.kind == "checkpoint":
        from mer.zoo.checkpoints import cached_checkpoint

        try:
            out.update(cached=True, path=str(cached_checkpoint(ref)))
        except NotCachedError:
            out.update(cached=False, fetch_with=pull_command(ref))
    else:
        try:
            folder, _, _ = resolve_local(ref)
        except NotCachedError:
            out.update(cached=False, fetch_with=pull_command(ref))
        else:
            out.update(cached=True, path=str(folder), config=asdict(read_config(folder)))
    return out
