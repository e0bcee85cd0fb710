# ruff: noqa: E501  (SPEC_TABLES is SPEC.md verbatim; its lines are as long as SPEC's)
"""The reported rows reproduce every number of SPEC A.7 Tables IV–XI and B.7.

``SPEC_TABLES`` below is SPEC.md's text of those tables, copied verbatim (SPEC section A.7), so the test
does not depend on ../shared being present; it is parsed here and compared cell by cell with the CSV files.
"""

from __future__ import annotations

import re

import pytest

from mer.leaderboard.reported import NA, ablation_rows, citations, reported_rows

SPEC_TABLES = """\
### Table IV: 3-class (CASME II | SAMM), UF1 / UAR
| Method | CASME II UF1 | CASME II UAR | SAMM UF1 | SAMM UAR |
|---|---|---|---|---|
| OFF-ApexNet (2019) | 0.8697 | 0.8828 | 0.5049 | 0.5392 |
| STSTNet (2019) | 0.8382 | 0.8686 | 0.6588 | 0.6810 |
| μ-BERT (2023) | 0.9034 | 0.8914 | N/A | N/A |
| HTNet (2024) | 0.9532 | 0.9516 | 0.8131 | 0.8124 |
| **MER-CLIP** | 0.9409 | 0.9487 | **0.8321** | **0.8434** |
### Table V: 5-class (CASME II | SAMM), ACC / UF1
| Method | CASME II ACC | CASME II UF1 | SAMM ACC | SAMM UF1 |
|---|---|---|---|---|
| LBP-TOP (2011) | 0.3968 | 0.3589 | 0.3556 | 0.3589 |
| MDMO (2015) | 0.5169 | 0.4966 | N/A | N/A |
| GraphTCN (2020) | 0.7398 | 0.7246 | 0.7500 | 0.6985 |
| AUGCN (2021) | 0.7427 | 0.7047 | 0.7426 | 0.7045 |
| MERSiamC3D (2021) | 0.8189 | 0.8300 | 0.6875 | 0.6400 |
| KFC-MER (2021) | 0.7276 | 0.7375 | 0.6324 | 0.5709 |
| MERASTC (2021) | 0.8540 | 0.8620 | 0.8380 | 0.8440 |
| MER-Supcon (2022) | 0.7358 | 0.7286 | 0.6765 | 0.6251 |
| C3DBed (2023) | 0.7764 | 0.7520 | 0.7573 | 0.7216 |
| μ-BERT (2023) | N/A | 0.8553 | N/A | 0.8386 |
| JGULF (2024) | 0.8204 | 0.8077 | 0.8071 | 0.7203 |
| **MER-CLIP** | 0.8233 | 0.8378 | 0.7721 | 0.7414 |
### Table VI: CAS(ME)³, UF1 / UAR
| Method | Task | UF1 | UAR |
|---|---|---|---|
| STSTNet (2019) | 3 | 0.3795 | 0.3792 |
| RCN-A (2020) | 3 | 0.3928 | 0.3893 |
| FearRef (2021) | 3 | 0.493 | 0.3413 |
| μ-BERT (2023) | 3 | 0.5604 | 0.6125 |
| HTNet (2024) | 3 | 0.5767 | 0.5415 |
| **MER-CLIP** | 3 | **0.7832** | **0.7606** |
| AlexNet (2022) | 4 | 0.2915 | 0.2910 |
| AlexNet + Depth (2022) | 4 | 0.3001 | 0.2982 |
| μ-BERT (2023) | 4 | 0.4718 | 0.4913 |
| SFAMNet (2024) | 4 | 0.4462 | 0.4797 |
| **MER-CLIP** | 4 | **0.6544** | **0.6242** |
| AlexNet (2022) | 7 | 0.1759 | 0.1801 |
| AlexNet + Depth (2022) | 7 | 0.1773 | 0.1829 |
| μ-BERT (2023) | 7 | 0.3264 | 0.3254 |
| SFAMNet (2024) | 7 | 0.2365 | 0.2373 |
| **MER-CLIP** | 7 | **0.4997** | **0.5014** |
### Table VII: DFME 7-class, UF1 / UAR / ACC
| Method | Test set | UF1 | UAR | ACC |
|---|---|---|---|---|
| FearRef (2021) | A | 0.3410 | 0.3686 | 0.5084 |
| Wang et al. (2024) | A | 0.4067 | 0.4074 | 0.4641 |
| He et al. (2024) | A | 0.4123 | 0.4210 | 0.4873 |
| **MER-CLIP** | A | **0.5024** | **0.5115** | **0.5696** |
| FearRef (2021) | B | 0.2875 | 0.3228 | 0.3645 |
| Wang et al. (2024) | B | 0.3534 | 0.3661 | 0.3813 |
| He et al. (2024) | B | 0.4016 | 0.4008 | 0.4147 |
| **MER-CLIP** | B | **0.5128** | **0.5120** | **0.5250** |
### Table VIII: component ablation
| AUG | EI | PT | DA | TestA UF1 | TestA UAR | TestB UF1 | TestB UAR | SAMM UF1 | SAMM UAR |
|---|---|---|---|---|---|---|---|---|---|
| ✗ | ✗ | - | ✗ | 0.3497 | 0.3685 | 0.3219 | 0.3306 | 0.6500 | 0.6409 |
| ✗ | ✓ | - | ✗ | 0.3836 | 0.3911 | 0.3230 | 0.3363 | 0.7196 | 0.7027 |
| ✓ | ✗ | ✗ | ✗ | 0.4176 | 0.4209 | 0.3833 | 0.4103 | 0.7673 | 0.7460 |
| ✓ | ✓ | ✗ | ✗ | 0.4355 | 0.4458 | 0.4200 | 0.4257 | 0.8080 | 0.8209 |
| ✓ | ✓ | ✓ | ✗ | 0.4639 | 0.4776 | 0.4563 | 0.4692 | 0.8043 | 0.8115 |
| ✓ | ✓ | ✓ | ✓ | 0.5024 | 0.5115 | 0.5128 | 0.5120 | 0.8321 | 0.8434 |
| Emo-Guided (emotion-label prompts + CLIP loss) | - | - | ✓ | 0.4222 | 0.4247 | 0.4380 | 0.4326 | 0.7968 | 0.7938 |
### Table IX: data augmentation (LSFM = LocalStaticFaceMix)
| Model | Aug | TestA UF1 | TestA UAR | TestB UF1 | TestB UAR | SAMM UF1 | SAMM UAR |
|---|---|---|---|---|---|---|---|
| UniformerV2 | Base | 0.3497 | 0.3685 | 0.3219 | 0.3306 | 0.6500 | 0.6409 |
| UniformerV2 | +LSFM | 0.4005 | 0.4104 | 0.3655 | 0.3605 | 0.7040 | 0.6916 |
| UniformerV2 | +AugMix | 0.3990 | 0.4060 | 0.3894 | 0.3916 | 0.7182 | 0.7158 |
| UniformerV2 | +LSFM+AugMix | 0.4242 | 0.4446 | 0.4061 | 0.4121 | 0.7295 | 0.7046 |
| MER-CLIP | Base | 0.4639 | 0.4776 | 0.4563 | 0.4692 | 0.8043 | 0.8115 |
| MER-CLIP | +LSFM | 0.4747 | 0.4862 | 0.4645 | 0.4698 | 0.8041 | 0.8226 |
| MER-CLIP | +AugMix | 0.4618 | 0.4650 | 0.4859 | 0.4869 | 0.8204 | 0.8212 |
| MER-CLIP | +LSFM+AugMix | 0.5024 | 0.5115 | 0.5128 | 0.5120 | 0.8321 | 0.8434 |
### Table X: AU description design
| Order | Prompt type | TestA UF1 | TestA UAR | TestB UF1 | TestB UAR | SAMM UF1 | SAMM UAR |
|---|---|---|---|---|---|---|---|
| F | Action-Oriented | 0.5024 | 0.5115 | 0.5128 | 0.5120 | 0.8321 | 0.8434 |
| F | FACS-Based | 0.4942 | 0.5008 | 0.4720 | 0.4824 | 0.8032 | 0.7980 |
| S | Action-Oriented | 0.4767 | 0.4861 | 0.4790 | 0.4664 | 0.8025 | 0.8289 |
### Table XI: number of templates
| # | TestA UF1 | TestA UAR | TestB UF1 | TestB UAR | SAMM UF1 | SAMM UAR |
|---|---|---|---|---|---|---|
| 1 | 0.4799 | 0.4848 | 0.4937 | 0.5045 | 0.7932 | 0.8241 |
| 3 | 0.4799 | 0.4891 | 0.4950 | 0.4950 | 0.8247 | 0.8386 |
| 5 | 0.4847 | 0.4930 | 0.5004 | 0.5013 | 0.8207 | 0.8385 |
| **7** | 0.5024 | 0.5115 | 0.5128 | 0.5120 | 0.8321 | 0.8434 |
| 10 | 0.4664 | 0.4781 | 0.4628 | 0.4753 | 0.8175 | 0.8337 |
"""

ABLATION_PROTOCOLS = ("dfme-test-a", "dfme-test-b", "loso-samm-3")
#: Table IV rows whose source papers report them as parts of the MEGC2019 composite (145 CASME II and 133
#: SAMM clips), not on loso-casme2-3 / loso-samm-3 (156 / 133 other clips): filed under megc2019.
COMPOSITE_PARTS = ("OFF-ApexNet", "STSTNet", "HTNet")


def _tables() -> dict[str, list[list[str]]]:
    """Table number → data rows (cells stripped of bold), header and rule rows dropped."""
    out: dict[str, list[list[str]]] = {}
    current = ""
    for line in SPEC_TABLES.splitlines():
        if line.startswith("### Table "):
            current = line.split()[2].rstrip(":")
            out[current] = []
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip().replace("**", "") for c in line.strip().strip("|").split("|")]
            out[current].append(cells)
    return {k: rows[1:] for k, rows in out.items()}  # drop each header row


def _method(cell: str) -> tuple[str, str]:
    m = re.fullmatch(r"(.+?) \((\d{4})\)", cell)
    return (m.group(1), m.group(2)) if m else (cell, "2025")


def _expected_main() -> dict[tuple[str, str, str], str]:
    """(protocol, method, metric) → the number as SPEC prints it ("N/A" kept)."""
    t = _tables()
    exp: dict[tuple[str, str, str], str] = {}
    for row in t["IV"]:
        name, _ = _method(row[0])
        cells = [
            ("loso-casme2-3", "uf1"),
            ("loso-casme2-3", "uar"),
            ("loso-samm-3", "uf1"),
            ("loso-samm-3", "uar"),
        ]
        if name in COMPOSITE_PARTS:  # measured on the MEGC2019 composite's CASME II and SAMM parts
            cells = [("megc2019", "casme2:uf1"), ("megc2019", "casme2:uar"), ("megc2019", "samm:uf1"),
                     ("megc2019", "samm:uar")]  # fmt: skip
        for (p, m), v in zip(cells, row[1:], strict=True):
            exp[(p, name, m)] = v
    for row in t["V"]:
        name, _ = _method(row[0])
        for (p, m), v in zip([("loso-casme2-5", "acc"), ("loso-casme2-5", "uf1"), ("loso-samm-5", "acc"),
                              ("loso-samm-5", "uf1")], row[1:], strict=True):  # fmt: skip
            exp[(p, name, m)] = v
    for row in t["VI"]:
        name, _ = _method(row[0])
        for m, v in zip(("uf1", "uar"), row[2:], strict=True):
            exp[(f"loso-casme3-{row[1]}", name, m)] = v
    for row in t["VII"]:
        name, _ = _method(row[0])
        for m, v in zip(("uf1", "uar", "acc"), row[2:], strict=True):
            exp[(f"dfme-test-{row[1].lower()}", name, m)] = v
    return exp


def test_tables_iv_to_vii_read_back_exactly() -> None:
    expected = _expected_main()
    assert len(expected) == 20 + 48 + 32 + 24  # every cell of Tables IV–VII
    got: dict[tuple[str, str, str], str] = {}
    for r in reported_rows():
        if r.table == "B.7":
            continue
        assert r.status == "reported" and r.citation in citations()
        for m, v in r.metrics.items():
            got[(r.protocol, r.method, m)] = v
    assert set(got) == set(expected)
    for key, text in expected.items():
        if text == "N/A":
            assert got[key] == NA, key
        else:
            assert got[key] == pytest.approx(float(text), abs=1e-9), key


def test_composite_parts_are_one_row_per_method_under_megc2019() -> None:
    rows = [r for r in reported_rows() if r.protocol == "megc2019"]
    assert [r.method for r in rows] == list(COMPOSITE_PARTS)
    htnet = rows[-1]
    assert htnet.model == "htnet" and htnet.metrics == {
        "casme2:uf1": 0.9532, "casme2:uar": 0.9516, "samm:uf1": 0.8131, "samm:uar": 0.8124
    }  # fmt: skip
    casme2_3 = {r.method for r in reported_rows() if r.protocol == "loso-casme2-3"}
    assert casme2_3 == {"μ-BERT", "MER-CLIP"}


def test_years_match_the_paper() -> None:
    years = {}
    for table in ("IV", "V", "VI", "VII"):
        for row in _tables()[table]:
            name, year = _method(row[0])
            years[name] = year
    for r in reported_rows():
        if r.table != "B.7":
            assert r.year == years[r.method], r


def test_tables_viii_to_xi_read_back_exactly() -> None:
    t = _tables()
    got = {(r.table, r.row, r.protocol): r for r in ablation_rows()}
    count = 0
    for table in ("VIII", "IX", "X", "XI"):
        for i, row in enumerate(t[table], start=1):
            labels, numbers = row[:-6], row[-6:]
            for j, p in enumerate(ABLATION_PROTOCOLS):
                r = got[(table, i, p)]
                assert r.labels == tuple(labels), (table, i)
                assert r.status == "reported" and r.citation in citations()
                assert (r.uf1, r.uar) == (
                    pytest.approx(float(numbers[2 * j])),
                    pytest.approx(float(numbers[2 * j + 1])),
                )
                count += 1
    assert count == len(got) == (7 + 8 + 3 + 5) * 3


def test_micro_au_clip_figures_b7() -> None:
    rows = [r for r in reported_rows() if r.table == "B.7"]
    figures = sorted((r.protocol, m, v) for r in rows for m, v in r.metrics.items())
    assert figures == [
        ("au-loso-casme2", "mean_f1", 0.782),
        ("au-loso-samm", "mean_f1", 0.730),
        ("casme2-mer-unstated", "wf1", 0.889),
        ("samm-mer-unstated", "uf1", 0.747),
    ]
    assert all(r.status == "reported" and "not stated" in r.note for r in rows)
