"""What each figure says in its notebook: what it plots, the paper's finding with its number, what to expect at demo
and paper scale, and each preset's runtime (PAPER.md §2, §6; benchmarks/demo_findings.md). One table, :data:`NOTES`,
keyed by figure id like ``figures.SPECS``; ``notebooks/make_notebooks.py`` writes it into each notebook's second cell.

A runtime is never a hard-coded count: the number of runs, seeds and generations comes from the figure's own run
configurations at that preset (:func:`collapse_utils.paper.figures.figure_configs`, with the preset's seeds: 3 at demo
scale), and their cost from the one table of measured rates the sweep plan uses (:data:`collapse_utils.paper.sweep.CPU_COST`
for the demo, :func:`collapse_utils.paper.sweep.generation_seconds` for the paper); :func:`runtime` fills them in.
"""

from __future__ import annotations

from dataclasses import dataclass

from .figures import figure_configs
from .sweep import CPU_COST, generation_seconds


@dataclass(frozen=True)
class FigureNotes:
    """What a figure's notebook says about it (its second cell, ``notebooks/make_notebooks.py``).

    ``plots``: axes and units; ``paper_finding``: what the paper found, with the numbers docs/PAPER.md gives
    (marked [read-off] where read from a figure image, and saying what the digest does not give);
    ``expect_demo`` / ``expect_paper``: what to expect at that scale, saying where the demo cannot resolve a claim;
    ``runtime_demo`` / ``runtime_paper``: the cost of a preset (smoke: :data:`SMOKE_RUNTIME`), with ``{runs}``
    where :func:`runtime` puts the figure's run count, generations and estimated time at that preset.
    """

    plots: str
    paper_finding: str
    expect_demo: str
    expect_paper: str
    runtime_demo: str
    runtime_paper: str


SMOKE_RUNTIME = ("about 30–60 s on a 2-core CPU, mostly kernel start-up (4 training steps per generation, 2 "
                 "generations, n = 16–32: plumbing only, the numbers mean nothing)")
# Where the runtimes come from, said once in every notebook.
RUNTIME_SOURCES = (
    "Demo: ≈31 CPU-s per generation (benchmarks/demo_findings.md: 943 CPU-s for the demo's 30 generations; on an "
    "idle 2-core machine two worker processes make the wall time about CPU time ÷ 1.5–2); with every run already "
    "in the store a demo notebook executes in 7–9 s (figures/executed/batch_summary.json). Paper: estimates from one H200's measured throughput "
    "(benchmarks/gpu_throughput.md, fast path: 5,972 training img/s, so 128,256 steps × 128 ≈ 0.76 h per generation at "
    "any n; 71.9 sampled img/s at 1000 steps), training and sampling only (no metrics, no compile time); no "
    "paper-scale run has been timed end to end, and the authors' hardware and GPU-hours are not known (PAPER.md §5).")
_GS_PIXEL = ("GS = generalization score (PAPER.md §3.1): mean L2 distance from each generated image to its nearest "
             "image in that model's own training set, on 0–255 pixel values")
_ENTROPY = "entropy = Kozachenko–Leonenko 1-NN estimator of the training set, in nats (PAPER.md §3.2)"
_FID = ("the Fréchet distance of the preset (`fid_mode`): at paper scale FID (PAPER.md §3.3), Inception pool3 "
        "features of the run's first samples (`fid_samples`: up to 32,768 as in the authors' FID.py) vs the run's n "
        "real images, through clean-fid's standard FID Inception (`clean`, metric `fid`) or the authors' torchvision "
        "ImageNet Inception (`torchvision`, metric `fid_torchvision`); at demo/smoke scale FD_LeNet (`lenet`, metric "
        "`fd_lenet`, PAPER.md §3.8): 2,000 held-out samples of each generation vs 2,000 MNIST test images in a "
        "LeNet's features, with its noise floor (two disjoint sets of test images) drawn as a dotted line, printed "
        "in the title and saved as `<figure>_floor.csv`")
_SIZE_SWEEP_DEMO = "Runs: the size sweep, shared with F2, F3, F4, F14, F17: {runs}"
_SIZE_SWEEP_PAPER = "Runs: the size sweep, shared with F2, F3, F4, F14, F17: {runs}"
_GRID_DEMO = ("Runs: the selection grid at n = 128 (vanilla replace shared with the size sweep; shared with F7–F10, "
              "F12, F13, F15): {runs}")
_GRID_PAPER = ("Runs: the selection grid (FFHQ 8,192 and CIFAR-10 32,768, replace and accumulate, 3 arms, selection "
               "arms sampling 2n; shared with F7–F10, F12, F13, F15): {runs}")
_DEMO_FID = ("Inception FID does not resolve these claims at demo scale (128 samples of 8×8 MNIST against 128 real "
             "images: the same model gives 63.1 with n and 68.8 with 2n samples), so the demo plots FD_LeNet on "
             "2,000 held-out samples, whose noise floor is ≈2.5 (mean of 5 random splits of the MNIST test set); the mean ± sd over the preset's 3 seeds and the "
             "verdict of each claim by its fixed rule are in docs/CLAIMS.md (`python -m collapse_utils claims "
             "--preset demo --out docs/CLAIMS.md`).")
_DEMO_FD_COST = ("; plus 2,000 held-out samples per generation drawn from each saved model (≈10 s per 1,000 on one "
                 "CPU thread) and their LeNet features (<1 s)")

NOTES: dict[str, FigureNotes] = {
    "F2": FigureNotes(
        plots=f"Left: generated images above their nearest training images (smallest n, first / middle / last "
              f"generation). Then {_GS_PIXEL}, log axis, vs generation, one line per dataset size n (replace); and "
              "the memorization index and the copy rate (PAPER.md §3.7, our design: 1,000 held-out samples of each "
              "model against 1,000 fresh draws from its training set's source; index 1 and copy rate 0.05 = as "
              "novel as fresh draws, index 0 and copy rate 1 = copies), i.e. memorization beyond the source; and "
              "the same samples against a real reference fixed per run (1,000 held-out real images against D_1): "
              "ρ = index × κ, the source's contraction κ, and the copy rate against the real images' 5th "
              "percentile (1, 1 and 0.05 for held-out real images); and the same three with the distances taken "
              "in the MNIST LeNet's features (grey digits; DINOv2-CLS features for colour images where its weights "
              "exist).",
        paper_finding="Finding 1 (PAPER.md §2 F2, §6 item 1): under replace GS decays near-exponentially, faster and "
                      "from lower for smaller datasets; CIFAR-10 n = 32,768 ≈1810 → ≈615 and n = 1,024 ≈105 → ≈35 "
                      "from iteration 1 to 10 [read-off]; \"with 1K samples, memorization begins in the first "
                      "iteration\" ([PN], a third-party summary). By iteration 8 the samples copy their neighbours.",
        expect_demo="8×8 MNIST, n = 32 / 128 / 1024, 5 generations (figures/F2.csv): GS 105 → 38, 215 → 85, 226 → 118 "
                    "(×0.77, ×0.79, ×0.85 per generation). n = 32 starts in the memorization regime (its pairs are "
                    "near-copies); n = 128 vs 1024 at generation 1 is a tie, so the size ordering rests on n = 128 "
                    "falling faster (benchmarks/demo_findings.md).",
        expect_paper="CIFAR-10, n = 1,024 … 32,768, 10 generations, pixel GS on 32×32×3 images: lines in the "
                     "0–2000 range like the paper's, the sizes ≤ 4,096 near the floor by generation 2–3.",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F3": FigureNotes(
        plots=f"Left: {_ENTROPY}, pixel space, vs generation per dataset size (replace). Right: real vs generated "
              "images projected on the 2nd and 3rd right-singular vectors of the real images (PAPER.md §3.5), first "
              "and last generation, median size.",
        paper_finding="Finding 2 (PAPER.md §2 F3, §6 item 1): pixel-space entropy falls monotonically for every size, "
                      "e.g. n = 32,768: 15.7 → 14.07 ×10³ and n = 1,024: 12.6 → 10.1 ×10³ over iterations 1–10 "
                      "[read-off]; the projections overlap the real ones at iteration 1 and collapse onto thin "
                      "filaments by iteration 21.",
        expect_demo="Entropy gen 1 → 5: n = 32 325 → 196, n = 128 310 → 250, n = 1024 298 → 272 nats (it may rise at "
                    "generation 2 first). Unlike the paper, generation-1 entropy *falls* with n here (a small-n bias "
                    "of the estimator, benchmarks/demo_findings.md); 5 generations show shrinking, not the paper's "
                    "filaments.",
        expect_paper="CIFAR-10 sweep, 10 generations: entropy of order 10⁴ nats (d = 3072), falling for every size; "
                     "run `generations=21` to see the filaments.",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F4": FigureNotes(
        plots="Each point one generation of one vanilla replace run (colour: n). (a) GS (pixels, log axis) vs "
              "training-set entropy (nats) with the fit of log GS on entropy; (b) GS vs the trace of the training "
              "set's covariance (pixels 0–255, PAPER.md §3.4). Pearson r on each panel and in F4.json.",
        paper_finding="Fig. 4a (PAPER.md §2 F4, §6 item 2): Pearson r = 0.91 between entropy and log GS, pooled over "
                      "sizes and iterations ([CARD]; [PN] \"p ≈ 0\"); the variance is a \"substantially weaker\" "
                      "predictor, each size on its own curve (the digest gives no r for it).",
        expect_demo="r = 0.868 over 15 points (rule: ≥ 0.7), variance r = 0.226 (benchmarks/demo_findings.md). The "
                    "pooled r is mostly between sizes: within a size r = 0.92–1.00, and the n = 32 points sit right "
                    "of the others (the estimator's small-n bias).",
        expect_paper="60 points (6 sizes × 10 generations) near one line, r near 0.91; the variance panel spread into "
                     "one curve per size.",
        runtime_demo=_SIZE_SWEEP_DEMO + "; the correlations themselves take well under a second.",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F7": FigureNotes(
        plots="GS (\"Gen ↑\") vs generation for vanilla, Threshold Decay Filter and Greedy Selection; panels dataset "
              "× paradigm (replace, accumulate-subsample). GS in the preset's feature space (the axis says which): "
              "L2 in pixels (0–255) at demo/smoke, between DINOv2-small CLS embeddings at paper scale.",
        paper_finding="PAPER.md §2 F7, §6 item 4 (DINOv2 space, [read-off]): selection keeps GS almost flat under "
                      "accumulate and slows its fall under replace; Greedy ≥ TDF. Iteration 8: CIFAR Replace "
                      "vanilla 18.9 / TDF 29.3 / Greedy 30.8; CIFAR Accumulate 27.8 / 35.1 / 37.5; FFHQ Replace "
                      "14.0 / 16.4 / 17.1; FFHQ Accumulate 21.3 / 25.6 / 28.8 (all from 38.7 or 30.2 at iteration 1).",
        expect_demo="Pixel GS, n = 128, generation 5 (figures/F7.csv): replace vanilla 85, TDF 133, Greedy 133; "
                    "accumulate vanilla 160, TDF 235, Greedy 236. The ordering holds, but TDF ≈ Greedy here (the "
                    "authors' pixel τ₀ = 2000, α = 0.95 on 8×8 images make the filter a coarse farthest-point pick).",
        expect_paper="Four panels in DINOv2 space (≈14–39), eight generations; TDF and Greedy separate a little.",
        runtime_demo=_GRID_DEMO + ".",
        runtime_paper=_GRID_PAPER + "."),
    "F8": FigureNotes(
        plots=f"{_FID}, vs generation for vanilla / Threshold Decay Filter / Greedy Selection; panels dataset × "
              "paradigm.",
        paper_finding="Fig. 6 (PAPER.md §2 F8, §6 item 3): at iteration 8 FFHQ Accumulate vanilla 75.7 vs Greedy "
                      "44.7 ([PN] attributes these to CIFAR-10; the project page's panel says FFHQ, §8), TDF ≈57.4; "
                      "CIFAR Accumulate ≈87 / ≈55.5 / ≈53; CIFAR Replace ≈188.5 / ≈112 / ≈113 [read-off]; FFHQ "
                      "Replace shows **no** FID gain (≈94.5 vanilla vs ≈98 / ≈99.5 at iteration 7).",
        expect_demo="FD_LeNet per generation, mean ± sd over 3 seeds (figures/F8.csv keeps every seed). " + _DEMO_FID,
        expect_paper="FID on up to 32,768 samples per generation (CIFAR-10: 32,768; FFHQ: 8,192, or 16,384 where "
                     "a selection arm draws 2n) against n real images, where the paper's gaps of ≈30–75 points (none "
                     "on FFHQ Replace) are far above sampling noise; the paper's absolute values come from "
                     "torchvision's ImageNet Inception, not the standard FID Inception (PAPER.md §3.3): compare "
                     "them with `fid_mode='torchvision'`.",
        runtime_demo=_GRID_DEMO + _DEMO_FD_COST + ".",
        runtime_paper=_GRID_PAPER + "; FID time not measured."),
    "F9": FigureNotes(
        plots=f"{_ENTROPY}, in the preset's feature space (pixels at demo/smoke, DINOv2-small CLS at paper scale), "
              "vs generation for vanilla / Threshold Decay Filter / Greedy Selection; panels dataset × paradigm.",
        paper_finding="PAPER.md §2 F9, §6 item 4 (DINOv2 space, [read-off]): iteration 8 CIFAR Replace vanilla 524 / "
                      "TDF 685 / Greedy 699 (from ≈750); CIFAR Accumulate 673 / 737 / 745; FFHQ Replace 419 / 459 / "
                      "472 (from 643); FFHQ Accumulate 562 / 614 / 643. Selection holds entropy nearly flat under "
                      "accumulate.",
        expect_demo="Pixel entropy, n = 128, generation 5 (figures/F9.csv): replace vanilla 250, TDF 288, Greedy 288; "
                    "accumulate vanilla 292, TDF 325, Greedy 326 (selection even rises above generation 1's 310).",
        expect_paper="Entropy in DINOv2 space in the hundreds of nats (d = 384), the paper's ordering vanilla < TDF "
                     "≤ Greedy.",
        runtime_demo=_GRID_DEMO + ".",
        runtime_paper=_GRID_PAPER + "."),
    "F10": FigureNotes(
        plots="Stacked bars: share of each generation's selected training set drawn from each source (real images, "
              "generation 1, 2, …), accumulate + Greedy and accumulate + TDF; the red curve is 1/g, the real share "
              "under the even mix of vanilla accumulate-subsample.",
        paper_finding="PAPER.md §2 F10, §6 item 5: selection keeps real images preferentially: FFHQ + Greedy ≈0.635 "
                      "real at iteration 8 [read-off] ([PN]: ≈65% vs 12.5% under even subsampling); CIFAR + Filter "
                      "≈0.345 at iteration 10.",
        expect_demo="n = 128, generation 5 (figures/F10.csv): 58 of 128 real (0.45) with Greedy, 63 (0.49) with TDF, "
                    "against 1/5 = 0.2 for the even mix: the claim resolves at this scale.",
        expect_paper="FFHQ and CIFAR-10 panels over 8 generations, real shares near the paper's 0.35–0.65.",
        runtime_demo="Runs: the selection grid's accumulate + Greedy and + TDF runs: {runs}.",
        runtime_paper="Runs: the selection grid's accumulate + Greedy and + TDF runs: {runs}."),
    "F11": FigureNotes(
        plots="MNIST, accumulate-subsample: sample grids (one row per digit) of CFG (w = 2) and CFG + Threshold "
              "Decay Filter at the first and last generation; training-set entropy (pixels, nats) vs generation of "
              "unconditional, CFG and CFG + filter; within-digit diversity; the preset's Fréchet distance at the last "
              "generation (FID at paper scale, FD_LeNet on 2,000 held-out samples at demo/smoke) with its "
              "real-vs-real noise floor.",
        paper_finding="PAPER.md §2 F11, §6 item 8: with CFG diversity collapses (each digit row one style); the filter "
                      "restores it. Entropy: CFG ≈3.93 → ≈3.67 ×10³, CFG + filter ≈3.93 → ≈3.99–4.00 ×10³ "
                      "[read-off]. FID at iteration 8 ([PN], unverified): unconditional 74.4, CFG 66.2, CFG + TDF "
                      "22.4. The authors' CFG code, architecture and label-drop rate are not released (§5).",
        expect_demo="8×8 MNIST, n = 128, 5 generations (figures/F11.csv, F11_fid.csv): training-set entropy per "
                    "generation of unconditional, CFG and CFG + filter, and FD_LeNet at generation 5 against its "
                    "noise floor (≈2.5 at 2,000 per side); means over seeds and verdicts in docs/CLAIMS.md.",
        expect_paper="12,000 MNIST images at 32×32, 8 generations; our conditional model is our own design, so "
                     "match the direction of the paper's numbers, not their values.",
        runtime_demo="Runs: the selection grid's vanilla accumulate run plus 2 CFG runs per seed: {runs}, if a CFG "
                     "generation costs what an unconditional one does (not measured)" + _DEMO_FD_COST + ".",
        runtime_paper="Runs: vanilla accumulate and 2 CFG runs at n = 12,000: {runs}."),
    "F12": FigureNotes(
        plots=f"Replace: {_FID} and GS (preset's space) vs generation for vanilla, vanilla trained on 2N images, "
              "Threshold Decay Filter and Greedy Selection (N picked from 2N samples).",
        paper_finding="Appendix C.1 (PAPER.md §2 F12, §6 item 6): training on 2N unselected images helps less than "
                      "selecting N; CIFAR Replace iteration 6 FID vanilla 155.5, 2N 134, TDF 95.5, Greedy 97 "
                      "[read-off].",
        expect_demo="GS and FD_LeNet per generation, mean ± sd over 3 seeds (figures/F12.csv). " + _DEMO_FID,
        expect_paper="FID in the paper's order (vanilla > 2N > selection), gaps of ≈20–60 points by generation 6.",
        runtime_demo="Runs: 3 replace arms of the selection grid plus one 2N run per seed: {runs}" + _DEMO_FD_COST + ".",
        runtime_paper="Runs: the replace arms of the selection grid plus a 2N run per dataset: {runs}."),
    "F13": FigureNotes(
        plots=f"Accumulate-subsample: {_FID} vs generation for vanilla, Greedy Selection and the Threshold Decay "
              "Filter at each decay factor α.",
        paper_finding="PAPER.md §2 F13, §6 item 7: α ∈ {0.80, 0.90, 0.95, 0.98} give almost identical FID, all "
                      "≈53–55.5 at iteration 8 on CIFAR Accumulate, vs vanilla ≈87 [read-off]: α barely matters.",
        expect_demo="α ∈ {0.80, 0.95} at n = 128, FD_LeNet per generation (figures/F13.csv). " + _DEMO_FID,
        expect_paper="Four α lines within a few points of each other, all well below vanilla.",
        runtime_demo="Runs: 3 accumulate arms of the selection grid plus one run per other α: {runs}"
                     + _DEMO_FD_COST + ".",
        runtime_paper="Runs: the accumulate arms of the selection grid plus one run per other α (shared with the "
                      "selection grid where α is the preset's): {runs}."),
    "F14": FigureNotes(
        plots="Twin axes vs generation per dataset size (replace): MNND, the mean nearest-neighbour distance within "
              "the training set (pixels 0–255, PAPER.md §3.6), and the trace of its covariance (§3.4).",
        paper_finding="PAPER.md §2 F14: nearest-neighbour distances collapse fast while the variance shrinks slowly "
                      "(the distribution turns \"spiky\"): n = 1,024 MNND 2480 → 910 → 75 (iterations 1, 2, 10), "
                      "trace 1.05 → 0.48 ×10⁷ [read-off].",
        expect_demo="Generation 1 → 5 (figures/F14.csv): MNND n = 32 315 → 45, n = 128 252 → 96, n = 1024 203 → 129; "
                    "trace 1.47 → 0.68, 1.31 → 0.37, 1.29 → 0.40 ×10⁵. MNND falls faster than the trace only for "
                    "n = 32; in 5 generations the larger sizes do not show the contrast.",
        expect_paper="CIFAR-10 sizes, 10 generations: MNND down 10–40× while the trace shrinks 1.5–2.2× (the paper's "
                     "[read-off] ratios).",
        runtime_demo=_SIZE_SWEEP_DEMO + "; the two metrics take seconds.",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "F15": FigureNotes(
        plots="Fréchet distance between generated and real images in DINOv2 space vs generation, vanilla vs Greedy "
              "Selection, replace and accumulate. Without DINOv2 weights (offline) another space is plotted "
              "instead and the title, axis and data file say so (`fd_fallback`: FD_LeNet at demo/smoke, the "
              "Inception FD (= FID) at paper scale).",
        paper_finding="PAPER.md §2 F15, §6 item 9 (dataset not labelled, likely CIFAR-10): at iteration 7 Greedy "
                      "lowers FD_DINO from ≈1800 to ≈1128 (replace) and from ≈1131 to ≈860 (accumulate) [read-off].",
        expect_demo="The committed demo figure is the FD_LeNet fallback (no DINOv2 weights offline), i.e. F8's "
                    "vanilla and Greedy lines. " + _DEMO_FID,
        expect_paper="FD_DINO in the hundreds to ≈2000 with DINOv2 weights available; Greedy's gap grows with the "
                     "generation.",
        runtime_demo="Runs: vanilla and Greedy of the selection grid, replace and accumulate: {runs}" + _DEMO_FD_COST
                     + ".",
        runtime_paper="Runs: vanilla and Greedy of the selection grid, replace and accumulate: {runs}; the paper plots "
                      "7 generations."),
    "F16": FigureNotes(
        plots="The first 6 × 6 samples of the last generation of vanilla accumulate (left) and accumulate with Greedy "
              "Selection (right), one seed, each titled with its GS in the preset's feature space (pixels at "
              "demo/smoke, DINOv2 at paper scale); the data file has every seed's GS per generation.",
        paper_finding="PAPER.md §2 F16 (appendix D.7): 6 × 6 FFHQ grids, \"Vanilla Accumulate, Generalization score "
                      "= 29.6\" vs \"With Greedy Selection (Generalization score = 37.0)\"; the iteration is not "
                      "stated, and the two scores equal F7's CIFAR accumulate values at iteration 5 (PAPER.md §8).",
        expect_demo="8×8 MNIST, n = 128, generation 5: pixel GS ≈160 (vanilla) vs ≈240 (Greedy); Greedy's digits "
                    "vary more in shape and thickness. The verdict on the gap is claims row 9 (F7's runs).",
        expect_paper="FFHQ 32×32 (the paper's images) or CIFAR-10 grids, DINOv2 GS in the titles.",
        runtime_demo="Runs: the selection grid's vanilla and Greedy accumulate runs (shared with F7–F10): {runs}.",
        runtime_paper="Runs: the selection grid's vanilla and Greedy accumulate runs: {runs}."),
    "F17": FigureNotes(
        plots="Grids of the first grid × grid generated images of each generation (columns), one row per dataset "
              "size (replace); each panel's title gives that generation's GS (pixels).",
        paper_finding="PAPER.md §2 F17 (appendix D.3): at n = 32,768 images grow blurrier and smeared over "
                      "iterations; at n = 1,024 exact duplicates of training images repeat within a grid from early "
                      "iterations.",
        expect_demo="8×8 MNIST digits, 5 generations: n = 32 shows repeated near-copies from generation 1 (34% of its "
                    "generation-1 samples copy a training image by the 1/3 rule, not the paper's metric); n = 128 "
                    "and 1024 grow dimmer and more alike over the generations.",
        expect_paper="32×32 CIFAR-10 grids like the paper's, 6 generations by default (`max_generations`).",
        runtime_demo=_SIZE_SWEEP_DEMO + ".",
        runtime_paper=_SIZE_SWEEP_PAPER + "."),
    "D1": FigureNotes(
        plots=f"F2's panels under accumulate-subsample (each later training set: n images drawn evenly from the real "
              f"images and every earlier generation's samples): generated images above their nearest training "
              f"images (smallest n), {_GS_PIXEL}, log axis, vs generation per dataset size n, and the samples "
              "against a real reference fixed per run (PAPER.md §3.7): ρ (1 for held-out real images, 0 for copies) "
              "and the copy rate against the real images' 5th percentile (0.05 for held-out real images), in pixels "
              "and in the MNIST LeNet's features (grey digits).",
        paper_finding="Appendix D.1 (PAPER.md §1): the generalization-to-memorization collapse also occurs under "
                      "accumulate (Section 3's setting: \"in Appendix D, we extend the explorations to other datasets "
                      "and paradigms, where the conclusion remains valid\", [RI]); the digest has no numbers of this "
                      "figure. The vanilla accumulate lines of F7 decay far more slowly than replace: CIFAR 38.7 → "
                      "27.8 vs → 18.9 by iteration 8 [read-off].",
        expect_demo="8×8 MNIST, n = 32 / 128 / 1024, 5 generations (figures/D1.csv): GS should fall more slowly than "
                    "F2's replace lines, since a share 1/g of every training set stays real; n = 32 memorizes from "
                    "the start as under replace.",
        expect_paper="CIFAR-10, n = 1,024 … 32,768, 10 generations: the size ordering of F2 with slower decay.",
        runtime_demo="Runs: the size sweep under accumulate (n = 128 shared with the selection grid's vanilla "
                     "accumulate runs): {runs}; plus 1,000 held-out samples per generation for ρ and the copy rate.",
        runtime_paper="Runs: the size sweep under accumulate: {runs}."),
    "D5": FigureNotes(
        plots=f"Vanilla runs at the selection size under replace, accumulate-subsample and fresh (each later "
              f"training set: half new real images, half the previous generation's samples, our choice since "
              f"D.5's text was not retrieved, PAPER.md §8), one line per paradigm: {_GS_PIXEL} (the preset's "
              f"feature space: pixels at demo/smoke, DINOv2 at paper scale); {_ENTROPY}; and {_FID}.",
        paper_finding="Appendix D.5 \"Self-consuming Loop with Fresh New Data\" (PAPER.md §1); its text and "
                      "numbers were not retrieved (PAPER.md §8). Fresh real data is expected to slow the collapse "
                      "more than accumulate [inferred].",
        expect_demo="8×8 MNIST, n = 128, 5 generations (figures/D5.csv): fresh and accumulate keep GS, entropy and "
                    "FD_LeNet closer to generation 1 than replace. " + _DEMO_FID,
        expect_paper="FFHQ 8,192 and CIFAR-10 32,768, 8 generations, DINOv2 GS/entropy and FID.",
        runtime_demo="Runs: the selection grid's vanilla replace and accumulate runs at n = 128 (shared with F7–F9) "
                     "and the fresh runs: {runs}" + _DEMO_FD_COST + ".",
        runtime_paper="Runs: the selection grid's vanilla runs and the fresh runs: {runs}; FID time not measured."),
}


def run_cost(figure: str, preset: str) -> str:
    """The figure's runs at ``preset`` in words, counted from its run configurations (every seed of the preset,
    each distinct run once) and priced like the sweep plan: CPU-minutes at demo scale (with the wall time of two
    workers on an idle 2-core machine), H200-hours at paper scale (training and sampling only)."""
    configs = list({c.run_key(): c for c in figure_configs(figure, preset)}.values())
    seeds = len({c.seed for c in configs})
    generations = sum(c.generations for c in configs)
    runs = f"{len(configs)} runs" + (f" ({len(configs) // seeds} per seed × {seeds} seeds)" if seeds > 1 else "")
    if preset in CPU_COST:
        cost = CPU_COST[preset]
        cpu_min = (len(configs) * cost.per_run_s + generations * cost.per_generation_s) / 60
        return (f"{runs}, {generations} generations: ≈{cpu_min:.0f} CPU-min, about {cpu_min / 2:.0f}–{cpu_min / 1.5:.0f} "
                "min from an empty store with two workers on an idle 2-core CPU")
    hours = sum(c.generations * generation_seconds(c) for c in configs) / 3600
    return f"{runs}, {generations} generations: ≈{hours:.0f} H200-hours (estimate)"


def runtime(figure: str, preset: str) -> str:
    """The runtime line of ``figure`` at ``preset`` (``demo`` or ``paper``) for its notebook, the counts filled in
    from the figure's configurations (:func:`run_cost`)."""
    notes = NOTES[figure]
    template = {"demo": notes.runtime_demo, "paper": notes.runtime_paper}[preset]
    return template.format(runs=run_cost(figure, preset))
