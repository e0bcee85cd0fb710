"""The leaderboard site in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it)
driven over the DevTools protocol (tests/cdp.py). Skipped, with the reason, where no Chromium is installed.

The screenshot goes to ``build/test-artifacts/`` (or ``$MER_TEST_ARTIFACTS``); its path is printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cdp import Chromium, find_chromium
from test_leaderboard_build import runs  # noqa: F401  (a fixture)

from mer.leaderboard.build import build_leaderboard

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="no chromium on PATH (apt-get install chromium)"
)
ARTIFACTS = Path(
    os.environ.get("MER_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "build/test-artifacts"
)


def _click(page: Chromium, selector: str) -> None:
    """A real mouse click (press and release) at the middle of the element."""
    box = page.eval(
        f"(() => {{ const e = document.querySelector({selector!r}); e.scrollIntoView({{block: 'center'}});"
        " const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        page.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                               "clickCount": 1})  # fmt: skip


def _run_order(page: Chromium, table: str) -> list[str]:
    return page.eval(
        f"Array.from(document.querySelectorAll('#{table} tbody tr')).map(r => r.querySelector('a') ? "
        "r.querySelector('a').textContent : r.cells[0].textContent)"
    )


def _visible(page: Chromium, selector: str) -> list[str]:
    return page.eval(
        f"Array.from(document.querySelectorAll({selector!r})).filter(e => e.offsetParent !== null)"
        ".map(e => e.dataset.protocol)"
    )


def test_site_in_headless_chromium(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    site = tmp_path / "site"
    build_leaderboard(runs, site, fmt="html")
    with Chromium() as page:
        page.open(site / "index.html")
        assert page.eval("document.querySelectorAll('section.board').length") > 10

        # sorting by UAR: high to low, the partial run (no value) last; a second click reverses
        before = _run_order(page, "t0")
        assert before == ["synth-lbptop-partial", "synth-merclip-s0", "synth-merclip-oracle", "synth-chance"]
        _click(page, "#t0 th[title='sort by UAR']")
        assert _run_order(page, "t0") == [
            "synth-merclip-oracle", "synth-merclip-s0", "synth-chance", "synth-lbptop-partial"
        ]  # fmt: skip
        _click(page, "#t0 th[title='sort by UAR']")
        assert _run_order(page, "t0") == [
            "synth-chance", "synth-merclip-s0", "synth-merclip-oracle", "synth-lbptop-partial"
        ]  # fmt: skip

        # the protocol filter hides every other protocol's sections
        assert "loso-synth-3" in _visible(page, "section.board")
        page.eval("const f = document.getElementById('f-protocol'); f.value = 'loso-samm-3';"
                  " f.dispatchEvent(new Event('change'))")  # fmt: skip
        shown = _visible(page, "section.board")
        assert shown and set(shown) == {"loso-samm-3"}
        page.eval("const g = document.getElementById('f-protocol'); g.value = '';"
                  " g.dispatchEvent(new Event('change'))")  # fmt: skip
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = page.screenshot(ARTIFACTS / "leaderboard-index.png")
        print(f"\nscreenshot: {shot}")

        # a run's detail view, opened by clicking its id, shows its confusion matrix
        since = len(page.events)
        _click(page, "#t0 a[href='runs/synth-merclip-s0.html']")
        page.wait_event("Page.loadEventFired", since)
        assert page.eval("location.pathname").endswith("/runs/synth-merclip-s0.html")
        cells = page.eval(
            "Array.from(document.querySelectorAll('table.confusion td')).map(c => c.textContent)"
        )
        assert cells == ["1", "1", "0", "0", "2", "0", "1", "0", "1"]
        assert page.eval("document.querySelector('table.confusion').offsetParent !== null")
        assert page.eval("document.querySelectorAll('svg.strip circle').length") == 2

        # the comparison page opens on the pair named in its address
        page.open(
            str((site / "compare.html").resolve().as_uri()) + "#loso-synth-3|synth-merclip-s0|synth-chance"
        )
        pair = page.eval("Array.from(document.querySelectorAll('div.pair')).filter(d => !d.hidden)"
                         ".map(d => d.dataset.a + ' vs ' + d.dataset.b)")  # fmt: skip
        assert pair == ["synth-merclip-s0 vs synth-chance"]

        assert page.errors() == []
        urls = page.requested_urls()
        assert urls and all(u.startswith("file://") for u in urls), urls
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
