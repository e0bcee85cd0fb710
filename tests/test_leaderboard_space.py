"""`mer leaderboard push --space`: the built site as a static Space on the loopback hub (tests/fakehub.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub.constants as hf_constants
import yaml
from fakehub import FakeHub
from test_leaderboard_build import runs  # noqa: F401  (a fixture)
from typer.testing import CliRunner

from mer.cli import app
from mer.leaderboard.build import build_leaderboard

TOKEN = "hf_fake_token_never_written_0123456789"
SPACE = "mer-test/leaderboard"


def _online(monkeypatch, tmp_path: Path, hub: FakeHub) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)


def _site_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_push_site_as_static_space_then_prune(runs: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    site = tmp_path / "site"
    build_leaderboard(runs, site, fmt="html", protocols=["loso-synth-3"])
    args = ["leaderboard", "push", "--space", SPACE, "--site", str(site)]
    with FakeHub() as hub:
        _online(monkeypatch, tmp_path, hub)
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        repo = hub.repos[SPACE]
        assert repo.type == "space" and repo.sdk == "static"
        pushed = dict(hub.files(SPACE))
        readme = pushed.pop("README.md").decode()
        assert pushed.pop(".gitattributes")  # the Hub's own file stays
        assert pushed == _site_files(site)  # every file, byte for byte, in one commit
        assert [m for m, p in hub.requests if p.endswith("/commit/main")] == ["POST"]
        assert ("POST", f"/api/spaces/{SPACE}/commit/main") in hub.requests
        meta = yaml.safe_load(readme.split("---\n")[1])
        assert meta["sdk"] == "static" and meta["app_file"] == "index.html" and "index.html" in pushed
        assert "pushed" in res.output and repo.refs["main"][:12] in res.output

        # a run gone from the site is gone from the Space after the next push
        shutil.rmtree(runs / "synth-chance")
        build_leaderboard(runs, site, fmt="html", protocols=["loso-synth-3"])
        assert CliRunner().invoke(app, args).exit_code == 0
        after = hub.files(SPACE)
        assert "runs/synth-chance.html" not in after and "runs/synth-chance/predictions.csv" not in after
        assert set(after) == set(_site_files(site)) | {"README.md", ".gitattributes"}

        # not a site: nothing is pushed; offline: refused before any request
        n = len(hub.requests)
        res = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "nothing")])
        assert res.exit_code == 3 and "build it first" in res.output
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 5 and "HF_HUB_OFFLINE=1" in res.output
        assert len(hub.requests) == n
