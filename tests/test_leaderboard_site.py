"""`mer leaderboard build --format html`: the static site from the hand-made runs of
test_leaderboard_build (same fixture), its determinism, ``--check``, run pages and the paired test.

Per-fold numbers below are computed by hand from the predictions the fixture writes (comments show them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_leaderboard_build import _metrics, _per_class, make_run, runs  # noqa: F401  (runs: a fixture)
from typer.testing import CliRunner

from mer.cli import app
from mer.leaderboard.build import build_leaderboard, describe
from mer.leaderboard.folds import FoldScore, paired_test
from mer.leaderboard.reported import reported_rows

PROTOCOLS = ["loso-synth-3", "loso-samm-3"]


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _said(result) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _rows(index: str, table_id: str) -> list[str]:
    table = index.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr data-i=.*?</tr>", table)


def test_site_is_deterministic_self_contained_and_complete(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    a, b = tmp_path / "a", tmp_path / "b"
    result = build_leaderboard(runs, a, fmt="html")
    build_leaderboard(runs, b, fmt="html")
    files = _files(a)
    assert files == _files(b)  # byte-identical
    assert result.files == len(files) and result.size == sum(map(len, files.values()))
    complete = ["synth-merclip-s0", "synth-merclip-oracle", "synth-chance", "samm-merclip"]
    for run_id in complete + ["synth-lbptop-partial", "samm-htnet-running"]:
        assert f"runs/{run_id}.html" in files
        assert files[f"runs/{run_id}/predictions.csv"] == (runs / run_id / "predictions.csv").read_bytes()
    # nothing is fetched from elsewhere: every src / href is relative (or an in-page anchor)
    for name, data in files.items():
        if name.endswith((".html", ".css", ".js")):
            text = data.decode()
            refs = re.findall(r'(?:src|href)="([^"]*)"', text) + re.findall(r"url\(([^)]*)\)", text)
            assert all(not re.match(r"^[a-z]+:|^//", r) for r in refs), (name, refs)
            assert "@import" not in text
    # every reported row of every protocol is in the index, with its value
    index = files["index.html"].decode()
    for rep in reported_rows():
        assert f">{rep.method}<" in index.replace("&amp;", "&"), rep.method
    assert result.written and describe(result)[0].startswith(f"wrote site {a} ({len(files)} files")


def test_rows_keep_their_marks_and_filter_tags(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    build_leaderboard(runs, tmp_path / "site", fmt="html", protocols=PROTOCOLS)
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    synth = {
        re.search(r'href="runs/([^"]+)\.html"', r).group(1): r for r in _rows(index, "t0") if "runs/" in r
    }
    oracle = synth["synth-merclip-oracle"]
    assert 'class="oracle"' in oracle and "oracle †" in oracle and 'data-select="oracle"' in oracle
    assert 'data-v="1.0000"' in oracle
    partial = synth["synth-lbptop-partial"]
    assert "data-v" not in partial and "<td>1/2</td>" in partial  # blank metrics, folds shown
    assert 'data-family="lbptop-svm"' in partial
    samm = _rows(index, "t2")
    reported = [r for r in samm if 'data-select="reported"' in r]
    assert len(reported) == sum(1 for rep in reported_rows() if rep.protocol == "loso-samm-3")
    assert 'data-family="merclip"' in next(r for r in reported if ">MER-CLIP<" in r)
    # the protocol filter lists exactly the two protocols; the sort types follow the columns
    assert re.findall(r'<option value="(loso-[^"]+)">', index) == PROTOCOLS
    head = index.split('id="t0"', 1)[1].split("</thead>", 1)[0]
    assert '<th data-type="num" title="sort by UAR">UAR</th>' in head


def test_run_page_shows_folds_confusion_and_the_whole_record(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    record = json.loads((runs / "synth-merclip-s0" / "run.json").read_text())
    record["data_fingerprint"] = {"sha256": "feedc0de" * 8, "files": 6}  # a field mer does not know yet
    (runs / "synth-merclip-s0" / "run.json").write_text(json.dumps(record))
    build_leaderboard(runs, tmp_path / "site", fmt="html")
    page = (tmp_path / "site" / "runs" / "synth-merclip-s0.html").read_text(encoding="utf-8")
    # fold 0: true n n p, pred n p p → F1 n 2/3, p 2/3 (s absent) → UF1 0.6667; recall n .5, p 1 → UAR .75
    # fold 1: true p s s, pred p s n → F1 n 0, p 1, s 2/3 → UF1 0.5556; UAR (1 + .5)/2 = .75; ACC 2/3
    folds = page.split('class="folds"', 1)[1].split("</table>", 1)[0]
    assert "<td>0</td><td>sub01</td><td>3</td><td>0.6667</td><td>0.7500</td><td>0.6667</td>" in folds
    assert "<td>1</td><td>sub02</td><td>3</td><td>0.5556</td><td>0.7500</td><td>0.6667</td>" in folds
    assert page.count("<circle") == 2 and "sub02: 0.5556" in page  # one dot per fold in the strip plot
    confusion = page.split('class="confusion"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r">(\d+)</td>", confusion) == ["1", "1", "0", "0", "2", "0", "1", "0", "1"]
    assert '<a href="synth-merclip-s0/predictions.csv">' in page
    assert "data_fingerprint" in page and "feedc0de" * 8 in page and "0123456789abcdef" in page
    assert 'href="../compare.html#loso-synth-3|synth-merclip-s0|synth-chance"' in page
    partial = (tmp_path / "site" / "runs" / "synth-lbptop-partial.html").read_text(encoding="utf-8")
    assert "Partial run: 1/2 folds done" in partial and 'class="confusion"' not in partial


def test_compare_page_pairs_runs_and_says_why_there_is_no_test(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    build_leaderboard(runs, tmp_path / "site", fmt="html")
    page = (tmp_path / "site" / "compare.html").read_text(encoding="utf-8")
    pair = page.split('data-a="synth-merclip-s0" data-b="synth-chance"', 1)[1].split("</div>", 1)[0]
    # chance fold 0: true n n p, pred p n s → F1 n 2/3, p 0, s 0 → UF1 0.2222; merclip 0.6667 → +0.4444
    assert "<td>0</td><td>sub01</td><td>0.6667</td><td>0.2222</td><td>+0.4444</td>" in pair
    assert "only 2 folds differ" in pair and "no test is reported" in pair
    assert "One of the two runs is † oracle-selected" in page  # on the merclip-s0 / merclip-oracle pair
    # the partial and the running run have no per-fold scores to pair
    assert 'value="synth-lbptop-partial"' not in page and 'value="samm-htnet-running"' not in page


def _scores(values: list[float]) -> list[FoldScore]:
    return [FoldScore(i, f"s{i}", 1, {"uf1": v}) for i, v in enumerate(values)]


def test_paired_test_exact_values_ties_and_too_few_folds() -> None:
    base = _scores([0.5] * 8)
    # 8 folds, A higher on all: exact two-sided p = 2 / 2^8
    t = paired_test(_scores([0.5 + 0.01 * (i + 1) for i in range(8)]), base)
    assert t.p_value == pytest.approx(2 / 256) and t.statistic == 0.0
    assert t.verdict == "A higher on 8 of 8 differing folds; significant at 0.05 (two-sided, exact)"
    # two ties are dropped (zero_method="wilcox"): 6 left, all positive → p = 2 / 2^6
    t = paired_test(_scores([0.5, 0.5] + [0.6 + 0.01 * i for i in range(6)]), base)
    assert t.p_value == pytest.approx(2 / 64) and "(2 tied folds dropped)" in t.verdict
    # tied ranks (|d| .1 ×3, .2 ×2, .3 ×2): the normal approximation, said so. Ranks 2, 2, 2 | 4.5, 4.5 |
    # 6.5, 6.5 with the one negative at 2 → W = 2; mean 7·8/4 = 14; variance 7·8·15/24 − (24+6+6)/48
    # = 34.25 → z = −12/5.852 = −2.0505 → p = 2·Φ(−2.0505) = 0.0403 (scipy: no continuity correction)
    t = paired_test(_scores([0.6, 0.6, 0.7, 0.7, 0.8, 0.8, 0.4, 0.5]), base)
    assert t.verdict.endswith("(two-sided, normal approximation, tied ranks)") and t.statistic == 2.0
    assert t.p_value == pytest.approx(0.0403, abs=2e-4) and "(1 tied fold dropped)" in t.verdict
    t = paired_test(_scores([0.5] * 8), base)
    assert t.p_value is None and t.verdict == "all 8 folds tie: no difference"
    t = paired_test(_scores([0.6] * 5 + [0.5] * 3), base)
    assert t.p_value is None and "only 5 folds differ" in t.verdict
    # only the folds both runs scored are paired
    t = paired_test(_scores([0.9, 0.8]), _scores([0.1] * 8))
    assert t.folds == [0, 1] and t.diffs == pytest.approx([0.8, 0.7])


def test_check_fails_on_a_stale_site_and_a_foreign_folder_is_left_alone(runs: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "site"
    args = ["leaderboard", "build", "--runs", str(runs), "--format", "html", "--out", str(out)]
    missing = CliRunner().invoke(app, [*args, "--check"])
    assert missing.exit_code == 1 and "is stale" in _said(missing) and not out.exists()
    assert CliRunner().invoke(app, args).exit_code == 0
    first = _files(out)
    ok = CliRunner().invoke(app, [*args, "--check"])
    assert ok.exit_code == 0 and "is up to date" in _said(ok)
    # a new run: the index, compare page and two new files differ; --check writes nothing
    make_run(runs, "synth-majority", "majority", "loso-synth-3", y_true=[0, 1, 2], y_pred=[0, 0, 0],
             metrics=_metrics(1 / 6, 1 / 3, 1 / 3, (0.0, 0.0, 0.0),
                              _per_class([0.5, 0.0, 0.0], [1.0, 0.0, 0.0], [1, 1, 1]),
                              [[1, 0, 0], [1, 0, 0], [1, 0, 0]]))  # fmt: skip
    stale = CliRunner().invoke(app, [*args, "--check"])
    assert stale.exit_code == 1 and "differs: runs/synth-majority.html" in _said(stale)
    assert "differs: index.html" in _said(stale) and _files(out) == first
    # a file edited by hand, or left over, is stale too; a rebuild repairs both
    assert CliRunner().invoke(app, args).exit_code == 0
    (out / "site.css").write_text("body{}")
    (out / "runs" / "old-run.html").write_text("gone")
    stale = CliRunner().invoke(app, [*args, "--check"])
    assert "differs: runs/old-run.html" in _said(stale) and "differs: site.css" in _said(stale)
    assert CliRunner().invoke(app, args).exit_code == 0
    assert not (out / "runs" / "old-run.html").exists()
    assert CliRunner().invoke(app, [*args, "--check"]).exit_code == 0
    # a folder that is not a mer site is never written into
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = CliRunner().invoke(app, [*args[:-1], str(foreign)])
    assert res.exit_code != 0 and "refusing to write into it" in _said(res)
    assert _files(foreign) == {"notes.txt": b"keep me"}
