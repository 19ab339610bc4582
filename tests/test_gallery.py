"""docs/FIGURES.md is written from the registry, the notes and docs/CLAIMS.md, and stays current."""

from __future__ import annotations

from pathlib import Path

from collapse_utils.paper import gallery
from collapse_utils.paper.figures import SPECS

ROOT = Path(__file__).resolve().parents[1]


def test_gallery_is_current():
    text = gallery.render((ROOT / gallery.CLAIMS).read_text(encoding="utf-8"), ROOT)
    assert (ROOT / gallery.GALLERY).read_text(encoding="utf-8") == text, \
        "docs/FIGURES.md is stale: run python -m collapse_utils.paper.gallery"


def test_gallery_shows_every_figure_with_its_verdicts_and_commands():
    claims = (ROOT / gallery.CLAIMS).read_text(encoding="utf-8")
    rows = gallery.claim_rows(claims)
    assert len(rows) >= 30 and all(r.verdict for r in rows)
    text = gallery.render(claims, ROOT)
    for fig in SPECS:
        section = text.split(f"## {fig}: ", 1)[1].split("\n## ", 1)[0]
        assert f"![{fig}](../figures/{fig}.png)" in section
        assert f"--from-results results/demo --only {fig}" in section
        for r in rows:
            if r.figure == fig:
                assert f"| {r.id} | " in section and f"**{r.verdict.replace('|', chr(92) + '|')}**" in section


def test_claim_rows_keep_escaped_pipes_inside_a_cell():
    line = r"| 5 | r(a, b) \| c | F4 | 0.9 | 0.8 ± 0.1 | holds | `cmd` |"
    (row,) = gallery.claim_rows(line)
    assert row.claim == "r(a, b) | c" and row.figure == "F4" and row.verdict == "holds"
