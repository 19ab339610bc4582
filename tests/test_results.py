"""Results bundles: a figure set's runs without their models, from which figures and claims are redrawn untrained.

At smoke scale on real tiny runs (the claims store of conftest.py: F2's size sweep and F10's selection runs, two
seeds): the bundle holds no weights or held-out samples, redraws every figure byte for byte as the full store
does, is never written to while drawing, and refuses what it cannot honestly do (unfinished runs, damage, resuming
a weights-free copy).
"""

from __future__ import annotations

import filecmp
import json
import shutil

import pytest

from collapse_utils.paper import results
from collapse_utils.loop import rundir
from collapse_utils.paper.figures import figure_runs
from conftest import CLAIMS_STORE_SEEDS

FIGS = ["F2", "F10"]


@pytest.fixture(scope="module")
def bundle(claims_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "smoke"
    record = results.write_bundle(out, "smoke", run_root=claims_store, seeds=list(CLAIMS_STORE_SEEDS), figures=FIGS,
                                  log=lambda *a: None)
    return out, record


def test_bundle_holds_results_not_models(bundle):
    out, record = bundle
    assert record["preset"] == "smoke" and set(record["figures"]) == set(FIGS)
    assert all(f["seeds"] == list(CLAIMS_STORE_SEEDS) for f in record["figures"].values())
    assert record["runs"] == len({r for f in record["figures"].values() for r in f["runs"]})
    names = {p.name for p in out.rglob("*")}
    assert "model" not in names and "heldout" not in names and "ckpt" not in names
    assert not list(out.rglob("*.safetensors"))
    assert record["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and p.name != "BUNDLE.json")
    assert record["written_by_commit"] is None or len(record["written_by_commit"]) >= 7
    # the drawing packages a figure file's bytes depend on, so a redraw knows which files it can compare
    assert {k: record["versions"][k] for k in ("matplotlib", "fonttools", "pillow")} == results.drawing_versions()
    assert record["versions"]["fonttools"] and record["versions"]["pillow"]
    # every metric of every run and generation, in one table
    lines = (out / results.METRICS_FILE).read_text().splitlines()
    assert len(lines) - 1 == record["generations"]
    head = lines[0].split(",")
    for metric in ("gs_pixel", "entropy_pixel", "mem_index_pixel", "copy_rate_pixel"):
        assert metric in head


def test_weights_free_copy_loads_but_cannot_resume(bundle, claims_store):
    from collapse_utils.loop.run import run_self_consuming

    out, record = bundle
    run_dir = next(results.store_dir(out).iterdir())
    assert rundir.is_results_copy(run_dir)
    run = rundir.load_run(run_dir)
    assert len(run.generations) == run.config.generations
    full = rundir.load_run(claims_store / run_dir.name)
    for a, b in zip(run.generations, full.generations):
        assert a.metrics == b.metrics
        assert (a.samples == b.samples).all() and (a.train_images == b.train_images).all()
    with pytest.raises(rundir.ConfigMismatchError, match="weights-free copy"):
        run_self_consuming(run.config.replace(generations=run.config.generations + 1), run_dir)


def test_redraw_equals_the_full_store_and_writes_nothing(bundle, claims_store, tmp_path):
    out, record = bundle
    full, redrawn = tmp_path / "full", tmp_path / "redrawn"
    for fig in FIGS:
        fr = figure_runs(fig, "smoke", run_root=str(claims_store), seeds=list(CLAIMS_STORE_SEEDS), fig_dir=str(full))
        results.plot_function(fig)(fr.runs, fr.fig_dir, **fr.plot_options)
    outputs = results.redraw(out, fig_dir=redrawn, log=lambda *a: None)
    assert set(outputs) == set(FIGS)
    drawn = sorted(p.name for p in full.iterdir())
    assert drawn == sorted(p.name for p in redrawn.iterdir())
    for name in drawn:
        if name.endswith((".csv", ".json", ".png")):
            assert filecmp.cmp(full / name, redrawn / name, shallow=False), name
    results.read_bundle(out)  # still exactly what its record lists


def test_damaged_or_incomplete_bundles_are_refused(bundle, tmp_path):
    out, _ = bundle
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    metrics = next(copy.rglob("gen_01/metrics.json"))
    record = json.loads(metrics.read_text())
    record["gs_pixel"] = record["gs_pixel"] * 2
    metrics.write_text(json.dumps(record))
    with pytest.raises(results.BundleError, match="changed"):
        results.redraw(copy, fig_dir=tmp_path / "f", log=lambda *a: None)
    with pytest.raises(results.BundleError, match="no runs for"):
        results.redraw(out, fig_dir=tmp_path / "f", figures=["F4"], log=lambda *a: None)
    with pytest.raises(results.BundleError, match="not a results bundle"):
        results.read_bundle(tmp_path)


def test_a_store_with_unfinished_runs_is_refused(claims_store, tmp_path):
    with pytest.raises(results.BundleError, match="not finished.*python -m collapse_utils figures --preset smoke"):
        results.write_bundle(tmp_path / "b", "smoke", run_root=claims_store, seeds=[7], figures=["F2"],
                             log=lambda *a: None)
    assert not (tmp_path / "b").exists()


def test_seeds_per_figure(claims_store, tmp_path):
    """A bundle may hold figures at different seed counts (e.g. one seed where the others did not fit)."""
    record = results.write_bundle(tmp_path / "b", "smoke", run_root=claims_store, seeds={"F2": [0, 1], "F10": [1]},
                                  figures=FIGS, log=lambda *a: None)
    assert record["figures"]["F2"]["seeds"] == [0, 1] and record["figures"]["F10"]["seeds"] == [1]
    assert all("-s1-" in name for name in record["figures"]["F10"]["runs"])
    assert set(results.redraw(tmp_path / "b", fig_dir=tmp_path / "f", log=lambda *a: None)) == {"F2", "F10"}


# ---------------------------------------------------------------------------------------------- the committed bundle
def test_committed_bundle_redraws_the_committed_figures_and_claims(tmp_path):
    """results/demo redraws every committed figure and docs/CLAIMS.md with no training.

    CSV/JSON data and the claims table must be byte-identical everywhere. A figure file's bytes also depend on the
    drawing packages (results.drawing_versions), which a fresh install may take newer than the bundle recorded:
    PNG pixels are compared where matplotlib is the recorded one (Pillow's encoder then does not matter), PDF bytes
    where matplotlib and fonttools (the embedded font subsets) both are."""
    import numpy as np
    from PIL import Image

    from collapse_utils.paper.claims import write_claims
    from collapse_utils.core.paths import repo_root

    root = repo_root()
    bundle = root / "results" / "demo"
    record = results.read_bundle(bundle)
    # a clone stays light: 99 runs without models (the figure set, F8/F12 at 6 seeds, four registered sets) are
    # 35.5 MB; the budget leaves room for a few more seeds, not for models or held-out samples
    assert record["bytes"] < 40e6
    outputs = results.redraw(bundle, fig_dir=tmp_path, log=lambda *a: None)
    assert set(outputs) == set(record["figures"])
    now, then = results.drawing_versions(), record["versions"]
    same_pixels = then.get("matplotlib") == now["matplotlib"]
    same_pdf = same_pixels and then.get("fonttools") == now["fonttools"]
    compared = {"data": 0, "png": 0, "pdf": 0}
    for path in sorted(tmp_path.iterdir()):
        committed = root / "figures" / path.name
        assert committed.exists(), f"{path.name} is drawn but not committed"
        if path.suffix in (".csv", ".json") or (same_pdf and path.suffix == ".pdf"):
            assert filecmp.cmp(path, committed, shallow=False), f"figures/{path.name} differs from its redraw"
            compared["data" if path.suffix != ".pdf" else "pdf"] += 1
        elif same_pixels and path.suffix == ".png":
            with Image.open(path) as a, Image.open(committed) as b:
                assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b)), \
                    f"figures/{path.name}: its pixels differ from its redraw's"
            compared["png"] += 1
    assert compared["data"] >= len(outputs)
    assert compared["png"] == (len(outputs) if same_pixels else 0)
    assert compared["pdf"] == (len(outputs) if same_pdf else 0)
    out, _ = write_claims(tmp_path / "CLAIMS.md", from_results=bundle)
    committed = (root / "docs" / "CLAIMS.md").read_text(encoding="utf-8")
    redrawn = out.read_text(encoding="utf-8").replace(f"--out {tmp_path / 'CLAIMS.md'}", "--out docs/CLAIMS.md")
    assert redrawn == committed, "docs/CLAIMS.md differs from claims --from-results results/demo"


def test_common_seeds_are_most_figures_seeds():
    """The claims of a bundle whose figures differ in seeds read the seeds most figures hold (each claim then its
    own figure's)."""
    assert results.common_seeds({"F2": [0, 1, 2], "F8": [0, 1, 2, 3, 4, 5], "F7": [0, 1, 2], "D1": [0]}) == [0, 1, 2]
    assert results.common_seeds({"F2": [0], "F8": [0, 1]}) == [0, 1]  # a tie: the longer list
    assert results.common_seeds({}) == []
