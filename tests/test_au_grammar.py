"""The AU grammar, cell by cell, on the tricky cells of the real sheets (parses checked by hand)."""

from __future__ import annotations

import pytest

from mer.protocols.au import format_au, parse_au_cell, parse_facs_names
from mer.protocols.sample import AU


def test_intensity_and_asymmetry():
    # SAMM "A12B": asymmetric AU12 at intensity B (the side letter comes before the number).
    assert parse_au_cell("A12B").aus == (AU(12, "A", "B"),)
    assert parse_au_cell("7C+A12B").aus == (AU(7, "", "C"), AU(12, "A", "B"))
    assert parse_au_cell("1A+2B+L14C").aus == (AU(1, "", "A"), AU(2, "", "B"), AU(14, "L", "C"))


def test_slash_intensity_alternative():
    # "4A/B": AU4 at intensity A or B.
    (au,) = parse_au_cell("4A/B").aus
    assert au == AU(4, "", "A", alternatives=(AU(4, "", "B"),))
    assert parse_au_cell("4A/B").warnings == []


def test_slash_side_alternative():
    # "A/L12": AU12 asymmetric or left.
    (au,) = parse_au_cell("A/L12").aus
    assert au == AU(12, "A", alternatives=(AU(12, "L"),))


def test_or_in_parentheses_then_plus():
    p = parse_au_cell("(R6 or R12)+R15")
    assert p.aus == (AU(6, "R", alternatives=(AU(12, "R"),)), AU(15, "R"))
    assert p.warnings == []
    # SAMM writes the same cell with spaces around "+" too.
    assert parse_au_cell("(R6 or R12) + R15").aus == p.aus


def test_three_way_or():
    (au,) = parse_au_cell("R14A or 17A or 24A").aus
    assert au == AU(14, "R", "A", alternatives=(AU(17, "", "A"), AU(24, "", "A")))
    assert format_au(au) == "(R14A or 17A or 24A)"


def test_ref_is_an_uncertain_au_with_a_named_warning():
    p = parse_au_cell("12A+ref(24)")
    assert p.aus == (AU(12, "", "A"), AU(24, uncertain=True))
    assert len(p.warnings) == 1 and p.warnings[0].startswith("ref:") and "ref(24)" in p.warnings[0]
    p = parse_au_cell("ref(L10)+A12B")
    assert p.aus == (AU(10, "L", uncertain=True), AU(12, "A", "B"))
    # A space after "+" (SAMM "7B+ ref(43)") changes nothing.
    assert parse_au_cell("7B+ ref(43)").aus == (AU(7, "", "B"), AU(43, uncertain=True))


def test_free_text_is_a_warning_never_dropped_silently():
    p = parse_au_cell("R14+17+soft focus")
    assert p.aus == (AU(14, "R"), AU(17))
    assert p.warnings == ["unparsed: 'soft focus' is not an AU"]


@pytest.mark.parametrize("cell", [12, 12.0, "12", "AU12", " 12 "])
def test_excel_integers_and_plain_text_agree(cell):
    assert parse_au_cell(cell).aus == (AU(12),)


def test_empty_cells():
    assert parse_au_cell(None).aus == ()
    assert parse_au_cell(float("nan")).aus == ()
    assert parse_au_cell("").warnings == []


def test_top_bottom_sides_and_order():
    p = parse_au_cell("24+T18+16")
    assert p.aus == (AU(16), AU(18, "T"), AU(24))  # ascending
    assert p.written == (AU(24), AU(18, "T"), AU(16))  # as the sheet writes it
    assert parse_au_cell("B23").aus == (AU(23, "B"),)


def test_facs_names_for_dfme():
    p = parse_facs_names("a combination of Brow Lowerer, Right Lip Corner Puller, Neck tightener")
    assert p.aus == (AU(4), AU(12, "R"), AU(21))
    assert parse_facs_names("Upper Lip Raiser might be present").aus == (AU(10, uncertain=True),)
    assert parse_facs_names("Cheek Raiser or Right Lip Corner Puller").aus == (
        AU(6, alternatives=(AU(12, "R"),)),
    )
    assert parse_facs_names("Blinking Hard").warnings == ["unparsed: 'Blinking Hard' is not a FACS name"]


def test_every_cell_of_the_real_sheets_parses(shared_fixtures):
    """Every AU cell of SAMM, CASME II and CAS(ME)³ yields AUs, each unparsed fragment a named warning."""
    import pandas as pd

    ann = shared_fixtures / "annotations"
    cells = list(pd.read_excel(ann / "casme2/CASME2-coding-20190701.xlsx", dtype=object)["Action Units"])
    samm = pd.read_excel(
        ann / "samm/SAMM_Micro_FACS_Codes_v2.xlsx", sheet_name="MICRO_ONLY", header=13, dtype=object
    )
    cells += list(samm["Action Units"])
    cells += list(pd.read_excel(ann / "casme3/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", dtype=object)["AU"])
    assert len(cells) == 255 + 159 + 860
    warned = {}
    for c in cells:
        p = parse_au_cell(c)
        assert p.aus, f"no AU from {c!r}"
        for w in p.warnings:
            assert w.split(":")[0] in ("ref", "unparsed")
            warned.setdefault(w.split(":")[0], set()).add(str(c))
    # 9 SAMM cells use ref(...); one writes "soft focus".
    assert len(warned["ref"]) == 9
    assert warned["unparsed"] == {"R14+17+soft focus"}
