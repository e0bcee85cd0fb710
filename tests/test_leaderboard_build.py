"""`mer leaderboard build`: run directories made here by hand → tables, PNGs, formats, --check.

Every metric below is computed by hand from the predictions written beside it (comments show the sums);
the expected markdown in ``tests/data/leaderboard/`` was written by hand, not generated.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mer.leaderboard.build import build_leaderboard, describe
from mer.leaderboard.render import render

DATA = Path(__file__).parent / "data" / "leaderboard"
CLASSES = ["negative", "positive", "surprise"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _per_class(f1: list[float], recall: list[float], support: list[int]) -> dict:
    return {
        c: {"f1": f, "recall": r, "support": s}
        for c, f, r, s in zip(CLASSES, f1, recall, support, strict=True)
    }


def make_run(
    root: Path,
    run_id: str,
    model: str,
    protocol: str,
    *,
    y_true: list[int],
    y_pred: list[int],
    metrics: dict | None,
    folds_done: int = 2,
    n_folds: int = 2,
    status: str = "complete",
    select: str = "last",
    size: str = "tiny",
    recipe: str = "paper",
    seed: int = 0,
    commit: str | None = None,
    created: str = "2025-06-01T09:00:00",
    finished: str | None = "2025-06-01T10:00:00",
    task: str = "emotion",
) -> Path:
    """Write run.json, predictions.csv and (when given) metrics.json like the runner does."""
    d = root / run_id
    d.mkdir(parents=True)
    folds = {str(i): {"name": f"sub{i + 1:02d}", "status": "done", "n_test": 3, "seconds": 1.5}
             for i in range(folds_done)}  # fmt: skip
    run = {
        "run_id": run_id, "model": model, "size": size, "protocol": protocol, "protocol_version": 1,
        "dataset": protocol.split("-")[1], "classes": CLASSES, "task": task, "recipe": {"frames": 8},
        "recipe_name": recipe, "seed": seed, "select": select, "mer_version": "0.1.0", "git_commit": commit,
        "torch": "2.4.0", "cuda": None, "device": "cpu", "created": created, "finished": finished,
        "status": status, "n_folds": n_folds, "folds_requested": list(range(n_folds)), "folds": folds,
        "options": {}, "reconstruction": False,
    }  # fmt: skip
    (d / "run.json").write_text(json.dumps(run, indent=2))
    with (d / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample", "subject", "fold", "y_true", "y_pred"] + [f"p_{c}" for c in CLASSES])
        for i, (t, p) in enumerate(zip(y_true, y_pred, strict=True)):
            probs = [0.8 if k == p else 0.1 for k in range(3)]
            w.writerow([f"s{i}", f"sub{i // 3 + 1:02d}", i // 3, CLASSES[t], CLASSES[p], *probs])
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return d


def _metrics(uf1, uar, acc, std, per_class, confusion, folds_done=2, n_folds=2) -> dict:
    return {
        "uf1": uf1, "uar": uar, "acc": acc, "wf1": uf1, "classes": CLASSES, "per_class": per_class,
        "confusion": confusion,
        "per_fold": {k: {"mean": v, "std": s}
                     for k, v, s in zip(("uf1", "uar", "acc"), (uf1, uar, acc), std, strict=True)},
        "n_samples": sum(map(sum, confusion)), "folds_done": folds_done, "n_folds": n_folds,
    }  # fmt: skip


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """Four SynthME runs (two merclip, chance, a partial lbptop-svm) and two SAMM runs."""
    root = tmp_path / "runs"
    # merclip: true n n p p s s, pred n p p p s n → confusion [[1,1,0],[0,2,0],[1,0,1]].
    # F1: n 2/(2+1+1)=0.5, p 4/(4+1)=0.8, s 2/(2+1)=0.6667 → UF1 1.9667/3=0.6556;
    # recall .5, 1, .5 → UAR .6667; ACC 4/6.
    make_run(root, "synth-merclip-s0", "merclip", "loso-synth-3", y_true=[0, 0, 1, 1, 2, 2],
             y_pred=[0, 1, 1, 1, 2, 0], commit="0123456789abcdef",
             metrics=_metrics(0.6555556, 0.6666667, 0.6666667, (0.1111, 0.0, 0.0),
                              _per_class([0.5, 0.8, 0.6666667], [0.5, 1.0, 0.5], [2, 2, 2]),
                              [[1, 1, 0], [0, 2, 0], [1, 0, 1]]))  # fmt: skip
    make_run(root, "synth-merclip-oracle", "merclip", "loso-synth-3", y_true=[0, 0, 1, 1, 2, 2],
             y_pred=[0, 0, 1, 1, 2, 2], select="oracle", seed=1, created="2025-06-02T07:00:00",
             finished="2025-06-02T08:00:00",
             metrics=_metrics(1.0, 1.0, 1.0, (0.0, 0.0, 0.0), _per_class([1.0] * 3, [1.0] * 3, [2, 2, 2]),
                              [[2, 0, 0], [0, 2, 0], [0, 0, 2]]))  # fmt: skip
    # chance: pred p n s n s p → [[1,1,0],[1,0,1],[0,1,1]]; F1 n .5, p 0, s .5 → UF1 = UAR = ACC = 1/3.
    make_run(root, "synth-chance", "chance", "loso-synth-3", y_true=[0, 0, 1, 1, 2, 2],
             y_pred=[1, 0, 2, 0, 2, 1], commit="0123456789abcdef", finished="2025-06-01T11:00:00",
             metrics=_metrics(1 / 3, 1 / 3, 1 / 3, (0.2357, 0.2357, 0.2357),
                              _per_class([0.5, 0.0, 0.5], [0.5, 0.0, 0.5], [2, 2, 2]),
                              [[1, 1, 0], [1, 0, 1], [0, 1, 1]]))  # fmt: skip
    # A --folds 0 run: metrics.json for the subset exists, but the table must not show a partial mean.
    make_run(root, "synth-lbptop-partial", "lbptop-svm", "loso-synth-3", y_true=[0, 1, 2], y_pred=[0, 1, 2],
             folds_done=1, status="partial", size="base", created="2025-06-03T12:00:00",
             finished="2025-06-03T12:30:00",
             metrics=_metrics(0.9, 0.9, 0.9, (0.0, 0.0, 0.0), _per_class([0.9] * 3, [0.9] * 3, [1, 1, 1]),
                              [[1, 0, 0], [0, 1, 0], [0, 0, 1]], folds_done=1))  # fmt: skip
    # SAMM merclip: confusion [[3,1,0],[0,3,1],[0,0,2]]: F1 n 6/7, p 6/8, s 4/5 → UF1 2.4071/3 = 0.8024;
    # recall .75, .75, 1 → UAR .8333; ACC 8/10.
    make_run(root, "samm-merclip", "merclip", "loso-samm-3", y_true=[0] * 4 + [1] * 4 + [2] * 2,
             y_pred=[0, 0, 0, 1, 1, 1, 1, 2, 2, 2], select="oracle", size="base", recipe="official",
             commit="fedcba9876543210", created="2025-06-05T01:00:00", finished="2025-06-05T02:00:00",
             metrics=_metrics(0.8023810, 0.8333333, 0.8, (0.1, 0.05, 0.02),
                              _per_class([6 / 7, 0.75, 0.8], [0.75, 0.75, 1.0], [4, 4, 2]),
                              [[3, 1, 0], [0, 3, 1], [0, 0, 2]]))  # fmt: skip
    # Still running: fold 0 done, no metrics.json yet.
    make_run(root, "samm-htnet-running", "htnet", "loso-samm-3", y_true=[0, 1, 2], y_pred=[0, 1, 1],
             folds_done=1, status="running", size="base", recipe="official", created="2025-06-04T00:00:00",
             finished=None, metrics=None)  # fmt: skip
    return root


PROTOCOLS = ["loso-synth-3", "loso-samm-3"]


def test_markdown_matches_hand_written_file(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "board" / "LEADERBOARD.md"
    result = build_leaderboard(runs, out, protocols=PROTOCOLS)
    expected = (DATA / "expected_synth_samm.md").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == expected
    assert result.skipped == []


def test_incomplete_runs_show_blank_metrics(runs: Path, tmp_path: Path) -> None:
    result = build_leaderboard(runs, tmp_path / "LB.md", check=True, protocols=PROTOCOLS)
    rows = {row.get("run"): row for t in result.tables for row in t.rows if "kind" in row}
    for run_id, folds in (("synth-lbptop-partial", "1/2"), ("samm-htnet-running", "1/2")):
        assert rows[run_id]["folds"] == folds
        assert [rows[run_id][m] for m in ("uf1", "uar", "acc")] == [None, None, None]
    # Its subset metrics (0.9) appear nowhere in the document.
    assert "0.9000" not in result.text


def test_pngs_exist_and_are_linked(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "board" / "LEADERBOARD.md"
    result = build_leaderboard(runs, out, protocols=PROTOCOLS)
    complete = ["synth-merclip-s0", "synth-merclip-oracle", "synth-chance", "samm-merclip"]
    assert sorted(p.name for p in result.figures) == sorted(f"{r}.png" for r in complete)
    text = out.read_text(encoding="utf-8")
    for run_id in complete:
        png = out.parent / "figures" / f"{run_id}.png"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
        assert f"[png](figures/{run_id}.png)" in text
    assert not (out.parent / "figures" / "samm-htnet-running.png").exists()


def test_check_catches_stale_file(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "LB.md"
    assert build_leaderboard(runs, out, check=True).stale is True  # missing file is stale
    assert not out.exists()
    build_leaderboard(runs, out)
    first = out.read_bytes()
    assert build_leaderboard(runs, out, check=True).stale is False
    build_leaderboard(runs, out)
    assert out.read_bytes() == first  # byte-identical rebuild
    # A new run makes the committed file stale; --check writes nothing.
    make_run(runs, "synth-majority", "majority", "loso-synth-3", y_true=[0, 1, 2], y_pred=[0, 0, 0],
             metrics=_metrics(1 / 6, 1 / 3, 1 / 3, (0.0, 0.0, 0.0),
                              _per_class([0.5, 0.0, 0.0], [1.0, 0.0, 0.0], [1, 1, 1]),
                              [[1, 0, 0], [1, 0, 0], [1, 0, 0]]))  # fmt: skip
    assert build_leaderboard(runs, out, check=True).stale is True
    assert out.read_bytes() == first
    out.write_text(first.decode() + "edited by hand\n")
    build_leaderboard(runs, out)
    assert build_leaderboard(runs, out, check=True).stale is False


def _md_numbers(text: str, cell_sep: str = " | ") -> list[str]:
    """Every 4-decimal number in table rows (notes under tables are prose and may quote numbers)."""
    rows = [line for line in text.splitlines() if cell_sep in line]
    return re.findall(r"\b\d\.\d{4}\b", "\n".join(rows))


def test_formats_carry_the_same_numbers(runs: Path, tmp_path: Path) -> None:
    result = build_leaderboard(runs, tmp_path / "LB.md", check=True, protocols=PROTOCOLS)
    md_numbers = _md_numbers(result.text)
    assert "0.8024" in md_numbers and "0.8321" in md_numbers

    doc = json.loads(render(result.tables, "json"))
    json_numbers = []
    for t in doc["tables"]:
        for row in t["rows"]:
            for c in t["columns"]:
                v = row[c["key"]]
                if isinstance(v, dict):
                    json_numbers.append(f"{v['value']:.4f}")
                    if v["std"] is not None:
                        json_numbers.append(f"{v['std']:.4f}")
    assert json_numbers == md_numbers

    rows = list(csv.DictReader(render(result.tables, "csv").splitlines()))
    merclip = next(r for r in rows if r.get("run") == "samm-merclip" and r["table"] == "loso-samm-3")
    got = (merclip["uf1"], merclip["uf1_std"], merclip["uar"], merclip["acc"])
    assert got == ("0.8024", "0.1000", "0.8333", "0.8000")
    partial = next(r for r in rows if r.get("run") == "synth-lbptop-partial" and r["table"] == "loso-synth-3")
    assert partial["uf1"] == partial["uar"] == partial["acc"] == "" and partial["folds"] == "1/2"
    csv_numbers = [v for r in rows for v in r.values() if re.fullmatch(r"\d\.\d{4}", v or "")]
    assert sorted(csv_numbers) == sorted(md_numbers)

    tex = render(result.tables, "latex")
    assert _md_numbers(tex, " & ") == md_numbers
    assert r"0.8024 $\pm$ 0.1000" in tex and r"oracle $^\dagger$" in tex


def test_ablation_table_appears_with_variant_runs(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "LB.md"
    assert "Table XI" not in build_leaderboard(runs, out, check=True).text
    make_run(runs, "samm-templates-1", "merclip-templates-1", "loso-samm-3", y_true=[0, 1, 2],
             y_pred=[0, 1, 2], finished="2025-06-06T00:00:00",
             metrics=_metrics(0.75, 0.7, 0.7, (0.05, 0.04, 0.03), _per_class([1.0] * 3, [1.0] * 3, [1, 1, 1]),
                              [[1, 0, 0], [0, 1, 0], [0, 0, 1]]))  # fmt: skip
    result = build_leaderboard(runs, out, check=True)
    keys = [t.key for t in result.tables]
    assert "table-xi" in keys and "table-viii" not in keys  # only tables whose variants ran
    xi = next(t for t in result.tables if t.key == "table-xi")
    headers = [c.header for c in xi.columns]
    assert headers[:3] == ["#", "Variant", "Kind"] and "SAMM UF1" in headers and "loso-synth-3 UF1" in headers
    md = result.text
    assert (
        "| 1 | merclip-templates-1 | reported | 0.4799 | 0.4848 | 0.4937 | 0.5045 | 0.7932 | 0.8241 | — | — |"
        in md
    )
    assert ("|  | merclip-templates-1 | measured |  |  |  |  | 0.7500 ± 0.0500 | 0.7000 ± 0.0400 |  |  "
            "| samm-templates-1 |") in md  # fmt: skip
    # The 7-template row is merclip: the oracle runs fill it, so it is marked †.
    seven = [r for r in xi.rows if r.get("variant") == "merclip" and r["kind"] != "reported"][0]
    assert seven["kind"] == "measured †"
    assert seven["runs"] == "samm-merclip, synth-merclip-oracle"  # latest complete run, protocol order


def test_au_runs_and_unknown_tasks(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    per_au = {"AU4": {"f1": 0.7, "support": 5}, "AU12": {"f1": 0.5, "support": 3}}
    au_metrics = {"mean_f1": 0.6, "per_au": per_au, "per_fold": {"mean_f1": {"mean": 0.6, "std": 0.1}},
                  "folds_done": 2, "n_folds": 2}  # fmt: skip
    d = make_run(root, "au-synth", "microau-clip", "au-loso-synth", y_true=[0], y_pred=[0], task="au",
                 metrics=au_metrics)  # fmt: skip
    run = json.loads((d / "run.json").read_text())
    (d / "run.json").write_text(json.dumps({**run, "reconstruction": True}))
    make_run(root, "odd", "merclip", "loso-synth-3", y_true=[0], y_pred=[0], task="spotting", metrics=None)
    (root / "broken").mkdir()
    (root / "broken" / "run.json").write_text("{not json")
    out = tmp_path / "LB.md"
    result = build_leaderboard(root, out, protocols=["au-loso-synth", "loso-synth-3"])
    assert len(result.skipped) == 2 and any("spotting" in s for s in result.skipped)
    assert any("broken" in s for s in result.skipped)
    text = out.read_text(encoding="utf-8")
    assert ("| microau-clip (reconstruction) |  | measured | 0.6000 ± 0.1000 | 2/2 | tiny | paper | last "
            "| 2025-06-01 |  | au-synth | [png](figures/au-synth.png) |  |") in text  # fmt: skip
    assert "| au-synth | microau-clip (reconstruction) | 0.7000 | 0.5000 |" in text
    assert (out.parent / "figures" / "au-synth.png").read_bytes()[:8] == PNG_MAGIC


def test_full_board_without_runs_has_every_reported_table(tmp_path: Path) -> None:
    result = build_leaderboard(tmp_path / "no-runs", tmp_path / "LB.md", check=True)
    keys = [t.key for t in result.tables]
    assert keys == ["loso-casme2-3", "loso-samm-3", "loso-casme2-5", "loso-samm-5", "loso-casme3-3",
                    "loso-casme3-4", "loso-casme3-7", "dfme-test-a", "dfme-test-b", "megc2019",
                    "au-loso-casme2", "au-loso-samm", "other-reported", "references"]  # fmt: skip
    assert "| merclip |  | measured |  |  |  |  |  |  |  |  |  | not run |  |  |" in result.text
    # The composite's per-dataset figures sit under megc2019, in their own columns.
    assert (
        "| Method | Year | Kind | UF1 | UAR | ACC | CASME II UF1 | CASME II UAR | SAMM UF1 | SAMM UAR "
        "| SMIC UF1 | SMIC UAR | Folds |"
    ) in result.text
    assert (
        "| HTNet | 2024 | reported | — | — | — | 0.9532 | 0.9516 | 0.8131 | 0.8124 | — | — "
        "|  |  |  |  |  |  |  |  | htnet2024 |"
    ) in result.text
    assert "| microau-clip (reconstruction) |  | measured |" in result.text


def test_nested_runs_and_cli_summary(runs: Path, tmp_path: Path) -> None:
    nested = tmp_path / "nested"
    (nested / "demo").mkdir(parents=True)
    for d in sorted(runs.iterdir(), reverse=True):  # another creation order, one folder deeper
        d.rename(nested / "demo" / d.name)
    out = tmp_path / "LB.md"
    result = build_leaderboard(nested, out, protocols=PROTOCOLS)
    assert out.read_text(encoding="utf-8") == (DATA / "expected_synth_samm.md").read_text(encoding="utf-8")
    assert describe(result) == [f"wrote {out} (2 tables, 6 runs, 4 figures drawn)"]
    assert describe(build_leaderboard(nested, out, check=True, protocols=PROTOCOLS)) == [
        f"{out} is up to date"
    ]


def test_cli_build_and_check(runs: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mer.cli import app

    out = tmp_path / "LB.md"
    args = ["leaderboard", "build", "--runs", str(runs), "--out", str(out), "--protocol", "loso-synth-3"]
    assert CliRunner().invoke(app, [*args, "--check"]).exit_code == 1  # no file yet
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, [*args, "--check"]).exit_code == 0
    out.write_text(out.read_text(encoding="utf-8").replace("0.6556", "0.6557"), encoding="utf-8")
    assert CliRunner().invoke(app, [*args, "--check"]).exit_code == 1
    csv_out = tmp_path / "LB.csv"
    assert CliRunner().invoke(app, [*args[:4], "--out", str(csv_out), "--format", "csv"]).exit_code == 0
    assert "synth-merclip-s0" in csv_out.read_text(encoding="utf-8")
