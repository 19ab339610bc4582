"""docs/FIGURES.md, the gallery: each committed figure beside the paper's finding, our verdicts from docs/CLAIMS.md
and the commands that regenerate it (from the results bundle in seconds, or from scratch).

Written from three sources, never by hand: the figure registry (:data:`collapse_utils.paper.figures.SPECS`), each
figure's notes (:data:`collapse_utils.paper.figure_notes.NOTES`, the paper's finding) and the claims table
(docs/CLAIMS.md, parsed here). ``python -m collapse_utils.paper.gallery`` rewrites it; a test checks it is current.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.paths import repo_root
from .figure_notes import NOTES
from .figures import SPECS

GALLERY = Path("docs") / "FIGURES.md"
CLAIMS = Path("docs") / "CLAIMS.md"
FIGURE_DIR = Path("figures")
BUNDLE = Path("results") / "demo"


@dataclass(frozen=True)
class ClaimRow:
    """One row of docs/CLAIMS.md as written there."""

    id: str
    claim: str
    figure: str
    paper: str
    ours: str
    verdict: str


def _cells(line: str) -> list[str]:
    """A markdown table row's cells, with escaped pipes (``\\|``) kept inside their cell."""
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def claim_rows(text: str) -> list[ClaimRow]:
    """The claims table of docs/CLAIMS.md (rows whose first cell is a number)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| "):
            continue
        cells = _cells(line)
        if len(cells) >= 6 and cells[0].isdigit():
            rows.append(ClaimRow(*cells[:6]))
    return rows


def _claims_header(text: str) -> dict[str, str]:
    """The ``- key: value`` lines above the table (preset, seeds, git commit, …)."""
    out = {}
    for line in text.split("## Verdict rule", 1)[0].splitlines():
        m = re.match(r"- ([a-z ]+): (.*)", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def render(claims_text: str, root: Path) -> str:
    """The gallery's markdown, figures linked relative to docs/."""
    rows = claim_rows(claims_text)
    head = _claims_header(claims_text)
    preset = head.get("preset", "`demo`").strip("`")
    lines = [
        "# Figure gallery",
        "",
        "Each committed figure of `figures/` beside what the paper found, our verdicts from "
        "[docs/CLAIMS.md](CLAIMS.md) (judged by a rule fixed before the numbers were seen) and the commands that "
        "regenerate it. Written by `python -m collapse_utils.paper.gallery` from the figure registry, the figures' notes "
        "and docs/CLAIMS.md; do not edit by hand.",
        "",
        f"- scale: `{preset}` (8×8 MNIST on a 2-core CPU; not the paper's scale, the figures' titles say so); seeds: "
        f"{head.get('seeds', '?')}",
        f"- redraw every figure from the committed results bundle `{BUNDLE.as_posix()}/` in seconds, with no "
        f"training: `python -m collapse_utils figures --from-results {BUNDLE.as_posix()}`",
        "- retrain from scratch instead (a few CPU-hours for the whole set; `sweep --preset demo --plan` prints "
        "the estimate): `python -m collapse_utils figures --preset demo --only FIG`",
        "",
    ]
    for fig, spec in SPECS.items():
        png = root / FIGURE_DIR / f"{fig}.png"
        lines += [f"## {fig}: {spec.title}", ""]
        if png.exists():
            lines += [f"![{fig}](../{FIGURE_DIR.as_posix()}/{fig}.png)", ""]
        else:
            lines += [f"*(no committed figure: `figures/{fig}.png` is missing)*", ""]
        note = NOTES.get(fig)
        if note is not None:
            lines += [f"**The paper.** {note.paper_finding}", ""]
        mine = [r for r in rows if r.figure == fig]
        if mine:
            lines += ["| # | claim | paper | ours | verdict |", "|---|---|---|---|---|"]
            for r in mine:
                cells = [r.id, r.claim, r.paper, r.ours, f"**{r.verdict}**"]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
        else:
            lines += ["No claim of docs/CLAIMS.md reads this figure.", ""]
        lines += ["```bash",
                  f"python -m collapse_utils figures --from-results {BUNDLE.as_posix()} --only {fig}   # seconds",
                  f"python -m collapse_utils figures --preset demo --only {fig}   # retrains what the store lacks",
                  "```", ""]
    return "\n".join(lines)


def write(root: Path | None = None) -> Path:
    """Rewrite ``docs/FIGURES.md`` under ``root`` (the repository) from its docs/CLAIMS.md."""
    root = Path(root) if root is not None else repo_root()
    text = render((root / CLAIMS).read_text(encoding="utf-8"), root)
    out = root / GALLERY
    out.write_text(text, encoding="utf-8")
    return out


if __name__ == "__main__":
    print(f"wrote {write()}", file=sys.stderr)
