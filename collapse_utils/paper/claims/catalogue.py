"""The catalogue of the paper's claims (docs/PAPER.md §6 headline results and §2 read-off values): for each,
the figure whose runs it uses, the paper's value or finding, and the statistic that reduces one seed's runs
to its effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...core.methods import short_label_of
from ...core.vocab import PARADIGM_SHORT_LABELS as _PARADIGM


# ---------------------------------------------------------------------------------------------- the claims
@dataclass(frozen=True)
class Claim:
    """One claim of the paper, as checked here.

    ``statistic`` names the function of :data:`STATISTICS` that gives the per-seed effects from the claim's runs
    with ``params``; metric names in ``params`` may hold ``{fs}`` (the preset's feature space, GS/entropy of the
    selection figures), ``{fd}`` (the preset's Fréchet distance, presets.Scale.fid_mode). ``sources`` are the figures
    (with figure_configs overrides) whose configurations hold the runs; default: ``figure`` alone. ``kind``:
    ``effect`` (:func:`verdict`), ``equivalence`` (:func:`equivalence_verdict`) or ``headline``
    (:func:`headline_verdict`, with ``paper_value``). ``fd``: the claim is on a Fréchet distance (noise floor).
    ``margin``: an equivalence claim's margin δ in the claim's units (rules.tost_verdict), fixed with the claim.
    ``seeds``: a claim registered before its data (:mod:`.registered`) is judged on these seeds only, whatever the
    report's seeds; the same statistic on ``exploratory_seeds`` is shown beside it and not judged.
    """

    id: str
    figure: str
    claim: str
    paper: str
    statistic: str
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "effect"
    fd: bool = False
    sources: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    paper_value: tuple[float, float] | None = None
    margin: float | None = None
    seeds: tuple[int, ...] | None = None
    exploratory_seeds: tuple[int, ...] = ()

    def figure_sources(self) -> tuple[tuple[str, Mapping[str, Any]], ...]:
        return self.sources or ((self.figure, {}),)


def _arm(paradigm: str | None = None, selection: str | None = None, **fields: Any) -> dict[str, Any]:
    """The config fields that pick one arm of a figure's runs (``None`` fields are not compared)."""
    out = dict(paradigm=paradigm, selection=selection, **fields)
    return {k: v for k, v in out.items() if v is not None}


# PAPER.md §2 F7/F9 read-off at it8 (CIFAR rows): vanilla, TDF, Greedy.
_F7_PAPER = {"replace": (18.9, 29.3, 30.8), "accumulate_subsample": (27.8, 35.1, 37.5)}
_F9_PAPER = {"replace": (524, 685, 699), "accumulate_subsample": (673, 737, 745)}
# PAPER.md §6.3 (CIFAR rows, it8): vanilla, TDF, Greedy.
_F8_PAPER = {"replace": (188.5, 112, 113), "accumulate_subsample": (87, 55.5, 53)}
_IDX = {"threshold": 1, "greedy": 2}


def _claims() -> list[Claim]:
    out: list[Claim] = [
        Claim("1", "F2", "GS decays across generations under replace, at every dataset size",
              "GS decays near-exponentially (§6.1; CIFAR-10 32768: ≈1810 → ≈615 over 10 iterations)",
              "decline", dict(metric="gs_pixel", log=True)),
        Claim("2", "F2", "Smaller datasets memorize earlier: generation-1 GS grows with the dataset size",
              "1K memorizes from iteration 1; sizes ≤4096 by iteration 2–3 (§6.1; it1 GS ≈105 at 1024 … ≈1810 at "
              "32768)", "size_order", dict(metric="gs_pixel")),
        Claim("3", "F3", "Training-set entropy falls under replace, at every dataset size",
              "pixel entropy falls monotonically for every size (§6.1; e.g. 15.7 → 14.07 ×10³ at 32768)",
              "decline", dict(metric="entropy_pixel", log=False)),
        Claim("4", "F4", "Training-set entropy predicts ln GS (pooled over sizes and generations)",
              "Pearson r = 0.91 between entropy and log GS (§6.2, Fig. 4a)", "pearson",
              dict(x="entropy_pixel", y="gs_pixel")),
        Claim("5", "F4", "The covariance trace is a weaker predictor of ln GS than entropy",
              "variance is a much weaker predictor (§6.2, Fig. 4b; no number given)", "pearson_gap",
              dict(x="entropy_pixel", z="cov_trace", y="gs_pixel")),
    ]
    n = 6
    for figure, metric, table, what in (("F7", "gs_{fs}", _F7_PAPER, "GS"), ("F9", "entropy_{fs}", _F9_PAPER,
                                                                            "training-set entropy")):
        for paradigm in ("replace", "accumulate_subsample"):
            for method in ("threshold", "greedy"):
                label = short_label_of(method)
                p = table[paradigm]
                out.append(Claim(
                    str(n), figure, f"{label} raises {what} at the last generation vs vanilla "
                    f"({_PARADIGM[paradigm]})",
                    f"selection keeps {what} higher (§6.4; CIFAR {_PARADIGM[paradigm]} it8: vanilla {p[0]:g}, "
                    f"{label} {p[_IDX[method]]:g})", "difference",
                    dict(metric=metric, a=_arm(paradigm, method), b=_arm(paradigm, "none"))))
                n += 1
    for paradigm in ("replace", "accumulate_subsample"):
        p = _F7_PAPER[paradigm]
        out.append(Claim(
            str(n), "F7", f"Greedy ≥ TDF on GS at the last generation ({_PARADIGM[paradigm]})",
            f"Greedy ≥ TDF on Gen in all four settings (§6.4; CIFAR {_PARADIGM[paradigm]} it8: TDF {p[1]:g}, "
            f"Greedy {p[2]:g})", "difference",
            dict(metric="gs_{fs}", a=_arm(paradigm, "greedy"), b=_arm(paradigm, "threshold"))))
        n += 1
    for paradigm in ("replace", "accumulate_subsample"):
        for method in ("threshold", "greedy"):
            label = short_label_of(method)
            p = _F8_PAPER[paradigm]
            out.append(Claim(
                str(n), "F8", f"{label} lowers FD at the last generation vs vanilla ({_PARADIGM[paradigm]})",
                f"FID it8, CIFAR {_PARADIGM[paradigm]}: vanilla ≈{p[0]:g}, {label} ≈{p[_IDX[method]]:g} "
                "(§6.3; FFHQ replace shows no FID gain)", "difference",
                dict(metric="{fd}", a=_arm(paradigm, "none"), b=_arm(paradigm, method)), fd=True))
            n += 1
    for method in ("threshold", "greedy"):
        out.append(Claim(
            str(n), "F10", f"{short_label_of(method)} keeps more real images in the training set than vanilla "
            "(accumulate)",
            "≈64% real at it8 with FFHQ+Greedy vs 12.5% under even subsampling (§6.5; CIFAR+Greedy ≈45% at it8, "
            "CIFAR+Filter ≈37%)", "difference",
            dict(metric="real_share", a=_arm("accumulate_subsample", method), b=_arm("accumulate_subsample", "none")),
            sources=(("F10", {}), ("F7", {"paradigms": ["accumulate_subsample"], "methods": ["none"]}))))
        n += 1
    for method in ("threshold", "greedy"):
        label = short_label_of(method)
        out.append(Claim(
            str(n), "F12", f"Selecting N from 2N ({label}) beats training on 2N unselected images (replace)",
            "2N unselected helps less than selecting N from 2N (§6.6; CIFAR replace it6 FID: 2N 134, "
            f"{label} {95.5 if method == 'threshold' else 97:g}, vanilla 155.5)", "difference",
            dict(metric="{fd}", a=_arm("replace_2n", "none"), b=_arm("replace", method)), fd=True))
        n += 1
    out.append(Claim(
        str(n), "F13", "The TDF decay factor barely matters (accumulate; FD at the last generation)",
        "TDF with α 0.80–0.98 gives almost identical FID, ≈53–55.5 at it8 on CIFAR accumulate (§6.7)",
        "arms_by", dict(metric="{fd}", where=_arm("accumulate_subsample", "threshold"), by="decay"),
        kind="equivalence", fd=True, margin=10.0))
    n += 1
    # F11's figure plots the training-set entropy in pixels (entropy_pixel) for all three settings; its
    # within-digit MNND panel exists only for the conditional runs, so the unconditional comparison uses entropy.
    out += [
        Claim(str(n), "F11", "CFG collapses diversity: training-set entropy (entropy_pixel) at the last generation "
              "is lower with CFG than unconditional",
              "with CFG, diversity collapses (§6.8; CFG entropy ≈3.93 → ≈3.67 ×10³)", "difference",
              dict(metric="entropy_pixel", a=_arm(selection="none", conditional=False),
                   b=_arm(selection="none", conditional=True))),
        Claim(str(n + 1), "F11", "Selection restores diversity under CFG: training-set entropy (entropy_pixel) at the "
              "last generation is higher with CFG + TDF than with CFG",
              "TDF restores diversity; entropy rises instead of falling (§6.8; ≈3.93 → ≈3.99–4.00 ×10³)", "difference",
              dict(metric="entropy_pixel", a=_arm(selection="threshold", conditional=True),
                   b=_arm(selection="none", conditional=True))),
    ]
    n += 2
    for paradigm, (v, g) in (("replace", (1800, 1128)), ("accumulate_subsample", (1131, 860))):
        out.append(Claim(
            str(n), "F15", f"Greedy lowers FD_DINO at the last generation ({_PARADIGM[paradigm]})",
            f"FD_DINO at it7: vanilla ≈{v} → Greedy ≈{g} (§6.9)", "difference",
            dict(metric="fd_dinov2", a=_arm(paradigm, "none"), b=_arm(paradigm, "greedy")), fd=True))
        n += 1
    out += [
        Claim(str(n), "F2", "Memorization across generations (memorization beyond the source, our design): the "
              "memorization index falls under replace, at every dataset size",
              "generalization turns into memorization over the iterations (the title; §6.1)",
              "decline", dict(metric="mem_index_pixel", log=False)),
        Claim(str(n + 1), "F2", "The copy rate (memorization beyond the source, our design) rises across generations "
              "under replace, at every dataset size",
              "by iteration 8 generated images are copies of their training neighbours (§2 F2, F17)",
              "decline", dict(metric="copy_rate_pixel", log=False, rise=True)),
    ]
    n += 2
    for dataset, label, metric, value, fig in (
            ("cifar10", "CIFAR-10 (32,768)", "fid", (27.5, 27.5), "F8"),
            ("ffhq32", "FFHQ (8,192)", "fid", (21.5, 22.0), "F8"),
            ("cifar10", "CIFAR-10", "gs_dinov2", (38.7, 38.7), "F7"),
            ("ffhq32", "FFHQ", "gs_dinov2", (30.2, 30.2), "F7")):
        what = "FID" if metric == "fid" else "DINO Gen"
        shown = f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}–{value[1]:g}"
        out.append(Claim(
            str(n), fig, f"Iteration-1 baseline: {what} of the model trained on real {label}",
            f"{what} ≈{shown} at iteration 1 (§6.10)", "first_generation",
            dict(metric=metric, where=_arm(selection="none", dataset=dataset)), kind="headline",
            fd=metric == "fid", paper_value=value))
        n += 1
    return out


CLAIMS: list[Claim] = _claims()


