"""MER-CLIP prompts rebuilt from the real sheets against every line of the authors' AUlabel_map files.

The authors' lists give each sample a line of their map; mer builds the text from the sheet's AU cell
(recipe ``official``: written order). Every difference must be one of the rows of merclip/PROMPTS.md's
decisions table (a new mismatch, or a listed one that disappeared, fails). Skipped without ../shared.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

from mer.merclip.prompts import (
    PromptConfig,
    describe_aus,
    descriptions_for,
    for_recipe,
    join_style,
    prompt_aus,
)
from mer.protocols.au import parse_au_cell, parse_facs_names
from mer.protocols.datasets import DATASETS
from mer.protocols.sample import Sample

PROMPTS_MD = Path(__file__).resolve().parents[1] / "merclip" / "PROMPTS.md"

SHEETS = {
    "casme2": ("casme2/CASME2-coding-20190701.xlsx", "casme2/casme2_AU_list.txt"),
    "samm": ("samm/SAMM_Micro_FACS_Codes_v2.xlsx", "samm/samm_5class_AU_list.txt"),
    "casme3": ("casme3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", "casme3/casme3_AU_list.txt"),
}


def _sheet_keys(dataset: str, name: str) -> list[str]:
    """Sheet sample ids an authors' sample name may stand for (PROMPTS.md, "Sample names")."""
    if dataset == "samm":  # SA006_006_1_2
        return [name.split("_", 1)[1]]
    if dataset == "casme2":  # CA001_happiness_EP02_01f_001
        m = re.fullmatch(r"CA(\d+)_[a-z]+_(.+)_\d+", name)
        return [f"sub{int(m.group(1)):02d}/{m.group(2)}"]
    m = re.fullmatch(r"spNO\.(\d+)_([A-Za-z])_(\d+)", name)  # spNO.001_a_0355
    clip, onset = f"spNO.{int(m.group(1))}/{m.group(2)}", int(m.group(3))
    return [f"{clip}/{onset}"] + ([f"{clip}/0"] if onset == 1 else [])


def _decisions() -> set[tuple[str, str, str, str]]:
    rows = set()
    text = PROMPTS_MD.read_text(encoding="utf-8").split("## Decisions", 1)[1]
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("casme2", "samm", "casme3", "dfme"):
            rows.add(tuple(cells[:4]))
    return rows


@cache
def _sheet(shared: Path, dataset: str) -> dict[str, Sample]:
    import mer.protocols.real  # noqa: F401  (registers the real datasets)

    parsed = DATASETS.get(dataset).parse(shared / "annotations" / SHEETS[dataset][0])
    return {s.sample_id: s for s in parsed.samples}


def _rebuild(shared: Path, recipe: str) -> tuple[dict[str, tuple[int, int]], set[tuple[str, str, str, str]]]:
    """(dataset → (lines matched, lines)), and the mismatches as (dataset, sample, ours, theirs)."""
    cfg = for_recipe(PromptConfig(), recipe)
    lists = shared / "annotations" / "merclip_lists"
    rates: dict[str, tuple[int, int]] = {}
    mismatches = set()
    for dataset, (_, au_list) in SHEETS.items():
        samples = _sheet(shared, dataset)
        theirs_map = (lists / dataset / "AUlabel_map.txt").read_text(encoding="utf-8").splitlines()
        n = ok = 0
        for line in (lists / au_list).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            name, index = line.split()
            name = name.split("/", 1)[1]
            hits = [samples[k] for k in _sheet_keys(dataset, name) if k in samples]
            assert hits, f"{dataset}: authors' sample {name} has no row in the sheet"
            ours = descriptions_for(prompt_aus(hits[0], cfg), dataset, cfg)[0]
            theirs = theirs_map[int(index)]
            n += 1
            if ours == theirs:
                ok += 1
            else:
                mismatches.add((dataset, name, ours, theirs))
        rates[dataset] = (ok, n)
    # DFME: the sheet is the FACS-name map; each of its lines is rebuilt as a sample with that AU cell.
    theirs_map = (lists / "dfme" / "AUlabel_map.txt").read_text(encoding="utf-8").splitlines()
    short = (lists / "dfme" / "AUlabel_map_short.txt").read_text(encoding="utf-8").splitlines()
    ok = 0
    for i, (theirs, facs) in enumerate(zip(theirs_map, short, strict=True)):
        sample = Sample("dfme", "s", str(i), "", 0, None, 0, "anger", parse_facs_names(facs).aus, facs)
        ours = descriptions_for(prompt_aus(sample, cfg), "dfme", cfg)[0]
        if ours == theirs:
            ok += 1
        else:
            mismatches.add(("dfme", str(i), ours, theirs))
    rates["dfme"] = (ok, len(theirs_map))
    return rates, mismatches


def _print_rates(recipe: str, rates: dict[str, tuple[int, int]]) -> None:
    for dataset, (ok, n) in rates.items():
        print(f"prompt match [{recipe}] {dataset}: {ok}/{n} = {100 * ok / n:.1f}% ({n - ok} differ)")


def test_official_prompts_rebuild_every_authors_line(shared_fixtures):
    rates, mismatches = _rebuild(shared_fixtures, "official")
    _print_rates("official", rates)
    listed = _decisions()
    assert mismatches - listed == set(), "new differences from the authors' maps (add a reason to PROMPTS.md)"
    assert listed - mismatches == set(), "PROMPTS.md lists differences that no longer occur"
    # every line was compared: the authors' lists hold 255 / 136 / 857 samples and 618 DFME lines
    assert {d: n for d, (_, n) in rates.items()} == {"casme2": 255, "samm": 136, "casme3": 857, "dfme": 618}


def test_paper_prompts_differ_only_in_order(shared_fixtures):
    """Recipe ``paper`` sorts the AUs: its extra differences are the same phrases in another order."""
    rates, mismatches = _rebuild(shared_fixtures, "paper")
    _print_rates("paper", rates)
    official = {m[:2] for m in _decisions()}
    extra = [m for m in mismatches if m[:2] not in official]
    assert extra  # CAS(ME)³ writes e.g. 2+1 and 24+14: ascending order must change those lines

    def phrases(text: str) -> list[str]:
        body = text.removeprefix("a combination of ")
        return sorted(p.strip() for p in re.split(r",| and ", body))

    for _, name, ours, theirs in extra:
        assert ours != theirs and phrases(ours) == phrases(theirs), name


@pytest.mark.parametrize(
    ("cell", "dataset", "recipe", "expected"),
    [
        (
            "4+7+L2",
            "casme2",
            "official",
            "a combination of lowering the brows, tightening the lids and "
            "raising the outer part of the left brow",
        ),
        (
            "4+7+L2",
            "casme2",
            "paper",
            "a combination of raising the outer part of the left brow, "
            "lowering the brows and tightening the lids",
        ),
        ("4A/B", "samm", "official", "lowering the brows"),
        ("A/L12", "samm", "paper", "pulling the left corner of the lips"),
        ("7B+56", "samm", "official", "tightening the lids"),
        ("L12 + 61", "samm", "official", "pulling the left corner of the lips"),
        (
            "13+39",
            "samm",
            "paper",
            "a combination of inflating the cheeks by exerting pressure from within "
            "the mouth and compressing the nostrils",
        ),
        ("26+25", "casme3", "official", "parting the lips"),
        ("25+26", "samm", "official", "a combination of parting the lips and dropping the jaw"),
        ("R12/R14", "samm", "official", "pulling the right corner of the lips or creating the right dimple"),
    ],
)
def test_sheet_cells_follow_the_authors_rules(cell, dataset, recipe, expected):
    """The rules of PROMPTS.md on single cells (runs without ../shared)."""
    aus = parse_au_cell(cell).aus
    sample = Sample(dataset, "s", "x", "", 0, None, 0, "others", aus, cell)
    cfg = for_recipe(PromptConfig(), recipe)
    assert descriptions_for(prompt_aus(sample, cfg), dataset, cfg) == [expected]


def test_recipe_order_and_explicit_order():
    assert for_recipe(PromptConfig(), "official").order == "written"
    assert for_recipe(PromptConfig(), "paper").order == "ascending"
    assert for_recipe(PromptConfig(order="ascending"), "official").order == "ascending"
    with pytest.raises(ValueError, match="written"):
        PromptConfig(order="random")
    # a sample whose AU text does not give its AUs (SynthME) keeps the ascending order
    aus = parse_au_cell("12+6").aus
    odd = Sample("synthme", "s", "x", "", 0, None, 0, "happiness", aus, "")
    assert describe_aus(prompt_aus(odd, for_recipe(PromptConfig(), "official")), sort=False) == describe_aus(
        aus
    )
    assert join_style("casme3") == "comma"


@pytest.mark.parametrize(("recipe", "order"), [("paper", "ascending"), ("official", "written")])
def test_the_run_plan_records_the_prompt_order_of_its_recipe(recipe, order):
    import json

    from typer.testing import CliRunner

    from mer.cli import app

    args = ["bench", "run", "--model", "merclip", "--protocol", "loso-samm-3", "-o", f"recipe={recipe}"]
    result = CliRunner().invoke(app, [*args, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["training"]["prompts"]["order"] == order
