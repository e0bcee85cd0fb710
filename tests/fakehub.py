"""A tiny in-memory Hugging Face Hub on 127.0.0.1 for tests.

It answers only the endpoints ``huggingface_hub`` calls for ``create_repo``, ``create_branch``,
``create_commit`` (preupload says every file is a regular git blob, so neither LFS nor Xet is involved),
``repo_info`` / ``model_info``, ``list_repo_tree`` and ``hf_hub_download`` / ``snapshot_download`` (HEAD +
GET of the ``resolve`` URLs with ``X-Repo-Commit`` and ``ETag``), for model repositories and Spaces. A test
can alter what a file serves to simulate a corrupted mirror or a download cut short.

As the Hub does, it starts a new repository with a commit holding ``.gitattributes``, and refuses a commit
to a branch that does not exist, a Space created without an SDK, and a ``README.md`` whose YAML front matter
does not validate (:mod:`hub_metadata`); ``/api/validate-yaml`` answers with the same checks.

Use it as a context manager::

    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from hub_metadata import check_readme

TYPES = {"models": "model", "spaces": "space", "datasets": "dataset"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


@dataclass
class FakeRepo:
    """One repository: its commits (oid → files) and branches (name → oid); ``type`` model or space."""

    private: bool = False
    type: str = "model"
    sdk: str | None = None
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    # path → bytes served instead of the committed content (corruption / truncation on the wire)
    served: dict[str, bytes] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        revision = unquote(revision)
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class FakeHub:
    """The server; ``repos`` maps ``org/name`` to :class:`FakeRepo`; ``requests`` logs ``(method, path)``."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.timeout = 1.0
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------------------ test helpers

    def serve_instead(self, repo_id: str, path: str, content: bytes) -> None:
        """Serve ``content`` for ``path`` (any revision) while the commit keeps the original."""
        self.repos[repo_id].served[path] = content

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(revision)]

    # ----------------------------------------------------------------------------------- routes

    def create_repo(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, org = body.get("name"), body.get("organization")
        repo_id = f"{org}/{name}" if org else name
        kind = body.get("type") or "model"
        if kind == "space" and not body.get("sdk"):
            return 400, {"error": "A Space needs an SDK (sdk: gradio, streamlit, docker or static)"}
        prefix = "" if kind == "model" else f"{kind}s/"
        with self._lock:
            if repo_id in self.repos:
                return 409, {
                    "error": f"You already created this {kind} repo",
                    "url": f"{self.endpoint}/{prefix}{repo_id}",
                }
            private = bool(body.get("private")) or body.get("visibility") == "private"
            repo = self.repos[repo_id] = FakeRepo(private=private, type=kind, sdk=body.get("sdk"))
            # as on the Hub, a new repository starts with one commit holding .gitattributes
            repo.commits["0" * 40] = {".gitattributes": GITATTRIBUTES}
            repo.refs["main"] = "0" * 40
        return 200, {"url": f"{self.endpoint}/{prefix}{repo_id}", "name": repo_id}

    def create_branch(self, repo_id: str, branch: str, body: dict[str, Any]) -> tuple[int, Any]:
        repo = self.repos[repo_id]
        branch = unquote(branch)
        with self._lock:
            if branch in repo.refs:
                return 409, {"error": f"Reference refs/heads/{branch} already exists"}
            start = repo.resolve(body.get("startingPoint") or "main")
            if start is None:
                return 404, {"error": "Invalid rev id"}
            repo.refs[branch] = start
        return 200, {}

    def commit(self, repo_id: str, revision: str, lines: list[dict[str, Any]]) -> tuple[int, Any]:
        repo = self.repos[repo_id]
        revision = unquote(revision)
        with self._lock:
            parent = repo.refs.get(revision)
            if parent is None:
                msg = f"Invalid rev id: {revision}"
                return 404, {"error": msg}, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": msg}
            files = dict(repo.commits[parent]) if parent else {}
            for item in lines:
                value = item["value"]
                if item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "deletedFile":
                    files.pop(value["path"], None)
                elif item["key"] != "header":
                    return 400, {"error": f"fake hub does not support {item['key']}"}
            if "README.md" in files:
                problems = check_readme(files["README.md"].decode("utf-8", "replace"), repo.type)
                if problems:
                    return 400, {"error": "Invalid metadata in README.md.\n- " + "\n- ".join(problems)}
            digest = hashlib.sha1(
                repr(sorted((p, hashlib.sha1(b).hexdigest()) for p, b in files.items())).encode()
            )
            digest.update((parent or "").encode())
            oid = digest.hexdigest()
            repo.commits[oid] = files
            repo.refs[revision] = oid
        return 200, {
            "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}",
            "commitOid": oid,
            "pullRequestUrl": None,
        }

    def info(self, repo_id: str, oid: str) -> dict[str, Any]:
        files = self.repos[repo_id].commits[oid]
        extra = {"sdk": self.repos[repo_id].sdk} if self.repos[repo_id].type == "space" else {}
        return {
            **extra,
            "id": repo_id,
            "modelId": repo_id,
            "sha": oid,
            "private": self.repos[repo_id].private,
            "siblings": [{"rfilename": p} for p in sorted(files)],
            "tags": [],
            "downloads": 0,
            "likes": 0,
        }

    def tree(self, repo_id: str, oid: str) -> list[dict[str, Any]]:
        files = self.repos[repo_id].commits[oid]
        return [
            {"type": "file", "path": p, "size": len(b), "oid": _blob_id(b)} for p, b in sorted(files.items())
        ]


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(
            self,
            status: int,
            body: Any = None,
            headers: dict[str, str] | None = None,
            raw: bytes | None = None,
        ) -> None:
            data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "application/octet-stream" if raw is not None else "application/json"
            )
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _not_found(self, code: str, message: str) -> None:
            self._send(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _repo(self, plural: str, repo_id: str) -> FakeRepo | None:
            """The repository, or None after answering 404 (missing, or another type)."""
            repo = hub.repos.get(repo_id)
            if repo is None or repo.type != TYPES[plural]:
                self._not_found("RepoNotFound", f"Repository {repo_id} not found")
                return None
            return repo

        def _route(self) -> None:
            path = urlsplit(self.path).path
            hub.requests.append((self.command, path))
            parts = [p for p in path.split("/") if p]
            if self.command == "POST":
                body = self._body()
                if parts == ["api", "repos", "create"]:
                    return self._send(*hub.create_repo(json.loads(body)))
                if parts == ["api", "validate-yaml"]:
                    req = json.loads(body)
                    kind = req.get("repoType") or "model"
                    problems = check_readme(req.get("content", ""), kind)
                    errors = [{"message": m} for m in problems]
                    return self._send(400 if problems else 200, {"errors": errors, "warnings": []})
                if len(parts) == 6 and parts[0] == "api" and parts[1] in TYPES and parts[4] == "branch":
                    repo_id = f"{parts[2]}/{parts[3]}"
                    if self._repo(parts[1], repo_id) is None:
                        return None
                    return self._send(*hub.create_branch(repo_id, parts[5], json.loads(body or b"{}")))
                if (
                    len(parts) == 6
                    and parts[0] == "api"
                    and parts[1] in TYPES
                    and parts[4] in ("preupload", "commit")
                ):
                    repo_id = f"{parts[2]}/{parts[3]}"
                    if self._repo(parts[1], repo_id) is None:
                        return None
                    if parts[4] == "preupload":
                        files = json.loads(body)["files"]
                        return self._send(
                            200,
                            {
                                "files": [
                                    {
                                        "path": f["path"],
                                        "uploadMode": "regular",
                                        "shouldIgnore": False,
                                        "oid": None,
                                    }
                                    for f in files
                                ]
                            },
                        )
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    return self._send(*hub.commit(repo_id, parts[5], lines))
                return self._send(404, {"error": f"fake hub: no route POST {path}"})
            # GET / HEAD
            if (
                len(parts) >= 5
                and parts[0] == "api"
                and parts[1] in TYPES
                and parts[4] in ("revision", "tree")
            ):
                repo_id = f"{parts[2]}/{parts[3]}"
                repo = self._repo(parts[1], repo_id)
                if repo is None:
                    return None
                oid = repo.resolve(parts[5]) if len(parts) > 5 else None
                if oid is None:
                    return self._not_found("RevisionNotFound", f"Revision not found in {repo_id}")
                if parts[4] == "revision":
                    return self._send(200, hub.info(repo_id, oid))
                return self._send(200, hub.tree(repo_id, oid))
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id = f"{parts[0]}/{parts[1]}"
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._not_found("RepoNotFound", f"Repository {repo_id} not found")
                oid = repo.resolve(parts[3])
                if oid is None:
                    return self._not_found("RevisionNotFound", f"Revision not found in {repo_id}")
                name = unquote("/".join(parts[4:]))
                if name not in repo.commits[oid]:
                    return self._send(
                        404,
                        {"error": "Entry not found"},
                        {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": oid},
                    )
                content = repo.served.get(name, repo.commits[oid][name])
                return self._send(
                    200, raw=content, headers={"X-Repo-Commit": oid, "ETag": f'"{_blob_id(content)}"'}
                )
            return self._send(404, {"error": f"fake hub: no route {self.command} {path}"})

        def do_GET(self) -> None:  # noqa: N802
            self._route()

        def do_HEAD(self) -> None:  # noqa: N802
            self._route()

        def do_POST(self) -> None:  # noqa: N802
            self._route()

    return Handler
