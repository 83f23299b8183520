"""The findings table and docs/findings.md are generated from the shipped measurements, and their verdicts follow
their rules: the documents equal a fresh generation, and doctored measurements flip the verdicts."""
import copy

import pytest

from ui import claims


def test_readme_and_findings_equal_a_fresh_generation_from_the_shipped_files():
    readme, findings = (claims.ROOT / "README.md").read_text(), (claims.ROOT / claims.FINDINGS).read_text()
    assert claims.documents(claims.claims(), readme, findings) == (readme, findings), \
        "README.md or docs/findings.md is stale: run python -m ui.claims --write"


def test_every_claim_has_a_section_in_the_findings_document():
    findings = (claims.ROOT / claims.FINDINGS).read_text()
    for c in claims.claims():
        heading = next(line for line in findings.splitlines()
                       if line.startswith("## ") and line[3:].lower().replace(" ", "-") == c.anchor)
        assert heading


def test_shipped_verdicts():
    verdicts = {c.name.split(":")[0]: c.verdict for c in claims.claims()}
    assert verdicts["Table 1 location"] == claims.HOLDS
    assert verdicts["Table 1 object"] == claims.FAILS
    assert verdicts["Fig. 6"] == claims.FAILS


@pytest.fixture
def doctored(monkeypatch):
    """Edit one shipped file's parsed contents before the claims read it."""
    original = claims._json

    def patch(path: str, edit):
        def fake(p: str):
            data = copy.deepcopy(original(p))
            return edit(data) or data if p == path else data
        monkeypatch.setattr(claims, "_json", fake)
    return patch


def test_an_object_permutenet_close_to_gapnet_makes_table_1_object_hold(doctored):
    def edit(rows):
        for r in rows:
            if r["task"] == "object" and r["net"] == "PermuteNet":
                r["accuracy"] = 95.0
    doctored("probe/table1.json", edit)
    assert claims.table1_object().verdict == claims.HOLDS


def test_a_permutenet_as_good_as_gapnet_breaks_table_1_location(doctored):
    def edit(rows):
        for r in rows:
            if r["task"] == "location" and r["net"] == "PermuteNet":
                r["accuracy"] = 99.0
    doctored("probe/table1.json", edit)
    assert claims.table1_location().verdict == claims.FAILS


def test_left_ranked_channels_hurting_their_own_half_most_makes_fig_6_hold(doctored):
    def edit(fid):
        for r in fid["regional"]:
            r["left_half"] = {"left": 0.3, "right": 0.6}
            r["right_half"] = {"left": 0.6, "right": 0.3}
    doctored("seg/fidelity_default.json", edit)
    assert claims.fig6().verdict == claims.HOLDS


def test_a_flip_ranking_no_worse_than_random_breaks_fig_4_top(doctored):
    def edit(fid):
        for t in fid["top_n"]:
            t["ranked"] = max(t["random"]) + 0.01
    doctored("seg/fidelity_default.json", edit)
    assert claims.fig4_top().verdict == claims.FAILS


def test_no_consistency_gain_breaks_table_2(doctored):
    def edit(rows):
        for r in rows:
            if r["method"] == "augshift" and r["dataset"] == "shapes100":
                r["cons8"] = 70.0
    doctored("shift/table2.json", edit)
    assert claims.table2().verdict == claims.FAILS


def test_markers_missing_is_a_clear_error():
    with pytest.raises(ValueError, match="markers"):
        claims.fill("no markers here", "findings", "table")
