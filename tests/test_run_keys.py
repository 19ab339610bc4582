"""Run keys are the names of the run store's folders: a configuration that keeps its meaning must keep its key.

``tests/data/run_keys.json`` pins the keys that :meth:`RunConfig.run_key` gave, before run keys learnt to survive
new options, for a broad set of configurations: every preset × paradigm × selection method (with the feature
spaces it compares images in) × dataset the experiments use, a few hand-picked variants, and every configuration
that ``figures.figure_configs`` produces for each figure and preset. Each entry stores the configuration as
``RunConfig.to_dict()`` and the key it had, so the test rebuilds exactly that configuration and recomputes its key.

The fixture was written once, with the code of that time, by::

    python tests/test_run_keys.py --write

and must not be rewritten to make a failure go away: a moved key orphans a stored run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from collapse_utils.config import RunConfig, make_config
from collapse_utils.vocab import PARADIGMS, PRESETS, SELECTION_METHODS

FIXTURE = Path(__file__).resolve().parent / "data" / "run_keys.json"

# The datasets the presets and experiments use (presets.SCALES: size sweeps, selection grids, guidance runs).
DATASETS = ("mnist", "cifar10", "ffhq32")
# The feature spaces each selection method can run in: none and random never compare images (their feature
# space is left at its default), Greedy Selection works in any space, the Threshold Decay Filter only where it
# has default parameters (selection.default_filter_params).
SPACES = {"none": ("pixel",), "random": ("pixel",), "greedy": ("pixel", "dinov2", "inception", "lenet"),
          "threshold": ("pixel", "dinov2", "inception")}


def _grid_config(preset: str, dataset: str, paradigm: str, selection: str, space: str) -> RunConfig:
    """A configuration as the experiments build one (experiments._config): the preset, the dataset, at paper
    scale the dataset's resolution."""
    from collapse_utils.presets import PAPER_DATASET_OVERRIDES

    values: dict[str, Any] = dict(dataset=dataset, paradigm=paradigm, selection=selection, feature_space=space)
    if preset == "paper":
        values.update(PAPER_DATASET_OVERRIDES.get(dataset, {}))
    if paradigm == "fresh":
        values["fresh_fraction"] = 0.25
    return make_config(preset, **values)


def fixture_configs() -> list[tuple[str, RunConfig]]:
    """(label, configuration) of every configuration the fixture pins."""
    from collapse_utils import figures

    out: list[tuple[str, RunConfig]] = []
    for preset in PRESETS:
        for dataset in DATASETS:
            for paradigm in PARADIGMS:
                for selection in SELECTION_METHODS:
                    if paradigm == "replace_2n" and selection != "none":
                        continue  # refused: replace_2n is the unselected 2N ablation
                    for space in SPACES[selection]:
                        out.append((f"grid {preset} {dataset} {paradigm} {selection} {space}",
                                    _grid_config(preset, dataset, paradigm, selection, space)))
    # Variants: values written out that equal what the field implies, other seeds, conditional runs, the
    # filter's parameters, a configuration made without a preset.
    variants = {
        "decay 0.95 pixel replace": dict(selection="threshold", decay=0.95),
        "decay 0.95 pixel accumulate": dict(selection="threshold", decay=0.95, paradigm="accumulate_subsample"),
        "decay 0.80 pixel accumulate": dict(selection="threshold", decay=0.80, paradigm="accumulate_subsample"),
        "decay 0.80 dinov2 accumulate": dict(selection="threshold", decay=0.80, paradigm="accumulate_subsample",
                                             feature_space="dinov2"),
        "decay 0.95 dinov2 accumulate": dict(selection="threshold", decay=0.95, paradigm="accumulate_subsample",
                                             feature_space="dinov2"),
        "decay 0.95 dinov2 replace": dict(selection="threshold", decay=0.95, feature_space="dinov2"),
        "decay 0.95 greedy": dict(selection="greedy", decay=0.95),
        "decay 0.95 none": dict(decay=0.95),
        "threshold 2000 pixel replace": dict(selection="threshold", threshold=2000.0),
        "threshold 1500 pixel replace": dict(selection="threshold", threshold=1500.0),
        "threshold 60 dinov2 accumulate": dict(selection="threshold", threshold=60.0, feature_space="dinov2",
                                               paradigm="accumulate_subsample"),
        "threshold and decay pixel accumulate": dict(selection="threshold", threshold=2000.0, decay=0.95,
                                                     paradigm="accumulate_subsample"),
        "when_stalled pixel replace": dict(selection="threshold", filter_schedule="when_stalled"),
        "pool_factor 2 greedy replace": dict(selection="greedy", pool_factor=2),
        "pool_factor 1 greedy accumulate": dict(selection="greedy", pool_factor=1, paradigm="accumulate_subsample"),
        "pool_factor 1 none replace": dict(pool_factor=1),
        "pool_factor 3 greedy replace": dict(selection="greedy", pool_factor=3),
        "pool_factor 2 threshold fresh": dict(selection="threshold", pool_factor=2, paradigm="fresh",
                                              fresh_fraction=0.5),
        "seed 7": dict(seed=7),
        "conditional": dict(conditional=True, paradigm="accumulate_subsample"),
        "conditional w=1 global greedy": dict(conditional=True, guidance_scale=1.0, class_selection="global",
                                              selection="greedy"),
        "n 1000 generations 3": dict(n=1000, generations=3),
        "lr and betas": dict(lr=3e-4, adam_betas=(0.9, 0.99)),
        "execution fields": dict(device="cpu", checkpoint_every=3, num_workers=1, progress=False,
                                 metrics=("gs_pixel",), tracker="none"),
    }
    for preset in PRESETS:
        for name, values in variants.items():
            out.append((f"variant {preset} {name}", make_config(preset, **values)))
    out.append(("custom RunConfig()", RunConfig()))
    out.append(("custom RunConfig(extra={'note': 'x'})", RunConfig(extra={"note": "x"})))
    out.append(("custom RunConfig threshold decay 0.95", RunConfig(selection="threshold", decay=0.95)))
    for preset in PRESETS:
        for fig in figures.SPECS:
            for i, cfg in enumerate(figures.figure_configs(fig, preset)):
                out.append((f"figure {fig} {preset} #{i}", cfg))
    return out


def write_fixture() -> None:
    entries = [dict(label=label, key=cfg.run_key(), config=dict(sorted(cfg.to_dict().items()))) for label, cfg in fixture_configs()]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(e) for e in entries)  # one configuration a line
    FIXTURE.write_text('{"entries": [\n' + lines + "\n]}\n")
    print(f"wrote {len(entries)} run keys to {FIXTURE.name}")


def _fixture() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())


def test_the_fixture_covers_every_figure_and_grid_cell():
    entries = _fixture()["entries"]
    labels = [e["label"] for e in entries]
    assert len(labels) == len(set(labels))
    from collapse_utils import figures

    for fig in figures.SPECS:
        for preset in PRESETS:
            assert f"figure {fig} {preset} #0" in labels, (fig, preset)
    assert sum(label.startswith("grid ") for label in labels) == 3 * 3 * 4 * 9 + 3 * 3


@pytest.mark.parametrize("preset", PRESETS)
def test_pinned_run_keys_are_unchanged(preset):
    """Every pinned configuration, rebuilt from its stored fields, still has its pinned key."""
    entries = [e for e in _fixture()["entries"] if f" {preset} " in f" {e['label']} " or
               (preset == "smoke" and e["label"].startswith("custom"))]
    assert entries
    changed = []
    for e in entries:
        key = RunConfig.from_dict(e["config"]).run_key()
        if key != e["key"]:
            changed.append(f"{e['label']}: {e['key']} -> {key}")
    assert not changed, "run keys changed:\n" + "\n".join(changed)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_run_keys.py --write   (writes tests/data/run_keys.json)")
    write_fixture()
