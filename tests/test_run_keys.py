"""Run keys are the names of the run store's folders: a configuration that keeps its meaning must keep its key.

``tests/data/run_keys.json`` pins the keys that :meth:`RunConfig.run_key` gave before run keys learnt to survive
new options (when every field entered the key), for a broad set of configurations: every preset × paradigm ×
selection method (with the feature spaces it compares images in) × dataset the experiments use, a few hand-picked
variants, and every configuration that ``figures.figure_configs`` produces for each figure and preset. Each entry
stores the configuration as ``RunConfig.to_dict()`` and the key it had, so the test rebuilds exactly that
configuration and recomputes its key.

The fixture was written once, with the code of that time, by::

    python tests/test_run_keys.py --write

(which refuses to overwrite it) and must not be rewritten to make a failure go away: a moved key orphans a stored
run. The only keys allowed to move are the entries marked ``moved_to``: configurations that wrote out a value
equal to what ``None`` implies (a pool factor, or the Threshold Decay Filter's threshold or decay, e.g. F13's
α = 0.95 arm at demo scale, which is F8's filter run), now keyed as the ``None`` spelling.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from collapse_utils.core.config import RunConfig, make_config
from collapse_utils.core.vocab import PARADIGMS, PRESETS, SELECTION_METHODS

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
    from collapse_utils.core.presets import PAPER_DATASET_OVERRIDES

    values: dict[str, Any] = dict(dataset=dataset, paradigm=paradigm, selection=selection, feature_space=space)
    if preset == "paper":
        values.update(PAPER_DATASET_OVERRIDES.get(dataset, {}))
    if paradigm == "fresh":
        values["fresh_fraction"] = 0.25
    return make_config(preset, **values)


def fixture_configs() -> list[tuple[str, RunConfig]]:
    """(label, configuration) of every configuration the fixture pins."""
    from collapse_utils.paper import figures

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
    if FIXTURE.exists():
        sys.exit(f"{FIXTURE} exists: it pins the keys of stored runs and is never rewritten")
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
    from collapse_utils.paper import figures

    for fig in figures.SPECS:
        for preset in PRESETS:
            assert f"figure {fig} {preset} #0" in labels, (fig, preset)
    assert sum(label.startswith("grid ") for label in labels) == 3 * 3 * 4 * 9 + 3 * 3


@pytest.mark.parametrize("preset", PRESETS)
def test_pinned_run_keys_are_unchanged(preset):
    """Every pinned configuration, rebuilt from its stored fields, still has its pinned key, but for the entries
    marked ``moved_to``, which have that key and keep the old one among their aliases."""
    entries = [e for e in _fixture()["entries"] if f" {preset} " in f" {e['label']} " or
               (preset == "smoke" and e["label"].startswith("custom"))]
    assert entries
    changed = []
    for e in entries:
        cfg = RunConfig.from_dict(e["config"])
        key = cfg.run_key()
        if key != e.get("moved_to", e["key"]):
            changed.append(f"{e['label']}: {e.get('moved_to', e['key'])} -> {key}")
        if "moved_to" in e:
            assert e["key"] in cfg.run_key_aliases(), e["label"]
        else:
            assert e["key"] not in cfg.run_key_aliases(), e["label"]
    assert not changed, "run keys changed:\n" + "\n".join(changed)


def test_moved_keys_are_exactly_the_written_out_implied_values():
    """The exceptions to the pin: each moved entry wrote out an implied value and now has the key of the same
    configuration spelt with ``None``; no entry that spells every implied value as ``None`` moved."""
    entries = _fixture()["entries"]
    moved = [e for e in entries if "moved_to" in e]
    assert len(moved) == 40
    assert sorted(e["label"] for e in moved if e["label"].startswith("figure")) == [
        "figure F13 demo #11", "figure F13 demo #7", "figure F13 demo #9", "figure F13 paper #4",
        "figure F13 paper #8", "figure F13 smoke #3"]
    for e in moved:
        cfg = RunConfig.from_dict(e["config"])
        implied = cfg.implied_values()
        written = {k: None for k, v in implied.items() if getattr(cfg, k) is not None and getattr(cfg, k) == v}
        assert written, e["label"]
        assert cfg.replace(**written).run_key() == e["moved_to"]
        assert cfg.replace(**written).key_dict() != cfg.key_dict()


def test_f13_default_decay_arm_is_f8s_filter_run():
    """F13's arm at the filter's default decay (0.95 in pixel space, 0.80 in DINOv2 space under accumulate) is
    the very run of F8's Threshold Decay Filter arm: one key, trained once. The other arms keep their own keys."""
    from collapse_utils.paper import figures

    for preset, default in (("demo", 0.95), ("paper", 0.80)):
        f8 = {c.run_key() for c in figures.figure_configs("F8", preset) if c.selection == "threshold"
              and c.paradigm == "accumulate_subsample"}
        f13 = [c for c in figures.figure_configs("F13", preset) if c.selection == "threshold"]
        shared = [c for c in f13 if c.run_key() in f8]
        assert shared and {c.decay for c in shared} == {default}, preset
        assert {c.decay for c in f13} - {default}, preset
        assert not [c for c in f13 if c.decay != default and c.run_key() in f8]


def test_a_new_field_at_its_default_changes_no_key():
    """RunConfig grown by one option (a real subclass through dataclasses.make_dataclass, keyed by the same
    run_key): every pinned key stays while the option is at its default, given or left out; another value is
    another run."""
    grown = dataclasses.make_dataclass(
        "GrownConfig", [("ema_decay", "float", dataclasses.field(default=0.999)),
                        ("augment", "tuple[str, ...]", dataclasses.field(default=("flip",)))], bases=(RunConfig,))
    assert "ema_decay" in {f.name for f in dataclasses.fields(grown)}
    for e in _fixture()["entries"]:
        key = e.get("moved_to", e["key"])
        assert grown.from_dict(e["config"]).run_key() == key, e["label"]
    base = make_config("demo", selection="greedy")
    implied = grown.from_dict(base.to_dict())
    given = grown.from_dict(base.to_dict() | {"ema_decay": 0.999, "augment": ("flip",)})
    assert implied.run_key() == given.run_key() == base.run_key()
    assert "ema_decay" not in given.key_dict()
    other = grown.from_dict(base.to_dict() | {"ema_decay": 0.99})
    assert other.run_key() != base.run_key() and other.key_dict()["ema_decay"] == 0.99
    assert grown.from_dict(base.to_dict() | {"augment": ()}).run_key() != base.run_key()


def test_a_run_recorded_before_a_new_field_resumes_with_it(tmp_path):
    """A run folder whose config.json predates an option resumes with that option at its default (the check of a
    resumed configuration compares key_dict, which leaves the new field out), and refuses another value."""
    from collapse_utils.loop import rundir

    grown = dataclasses.make_dataclass("GrownConfig", [("ema_decay", "float", dataclasses.field(default=0.999))],
                                       bases=(RunConfig,))
    base = make_config("smoke", selection="greedy")
    rundir.write_config(tmp_path, base)
    rundir.check_config(tmp_path, grown.from_dict(base.to_dict()))
    with pytest.raises(rundir.ConfigMismatchError, match="ema_decay"):
        rundir.check_config(tmp_path, grown.from_dict(base.to_dict() | {"ema_decay": 0.5}))


def test_an_implied_value_given_or_left_out_is_one_key():
    base = make_config("smoke", selection="threshold", paradigm="accumulate_subsample", feature_space="dinov2")
    assert base.implied_values() == {"pool_factor": 1, "threshold": 60.0, "decay": 0.80}
    spelt = base.replace(decay=0.8, threshold=60, pool_factor=1)
    assert spelt.run_key() == base.run_key()
    assert spelt.key_dict()["decay"] == 0.8  # the configuration itself is kept as given
    assert base.replace(decay=0.95).run_key() != base.run_key()  # 0.95 is not the default here
    assert base.replace(pool_factor=2).run_key() != base.run_key()
    assert len(base.run_key_aliases()) == 7  # the 2**3 spellings less the canonical one (its key unchanged)
    # a selection that ignores the filter's parameters keeps them in its key as given
    greedy = make_config("smoke", selection="greedy")
    assert greedy.replace(decay=0.95).run_key() != greedy.run_key()
    # a feature space without filter defaults implies nothing about them
    lenet = make_config("smoke", selection="threshold", feature_space="lenet", decay=0.95)
    assert "decay" not in lenet.implied_values() and lenet.run_key() != lenet.replace(decay=None).run_key()


def test_the_store_finds_a_run_under_its_former_key(tmp_path):
    """A store made before implied values were keyed as ``None``: F13's smoke arm at the default decay
    (``decay=0.95``) trained under its former key. The store finds that folder for both spellings of the run
    (``decay=0.95`` and F8's ``decay=None``), trains nothing again, continues an unfinished one in the spelling it
    was started with, and shows each caller the configuration it asked for."""
    import shutil

    from collapse_utils.loop import rundir, store
    from collapse_utils.loop.run import run_self_consuming
    from collapse_utils.loop.rundir import ConfigMismatchError

    entry = next(e for e in _fixture()["entries"] if e["label"] == "figure F13 smoke #3")
    f13 = RunConfig.from_dict(entry["config"])
    f8 = f13.replace(decay=None)
    assert f13.decay == 0.95 and f13.run_key() == f8.run_key() == entry["moved_to"] != entry["key"]
    old = tmp_path / store.run_name(f13, entry["key"])
    assert old.name.endswith(entry["key"]) and old != tmp_path / store.run_name(f13)
    run_self_consuming(f13, old)

    assert store.run_dir_for(f13, tmp_path) == store.run_dir_for(f8, tmp_path) == old
    assert store.is_finished(f8, tmp_path)
    runs = store.ensure_runs([f8, f13], tmp_path)
    assert [r.run_dir for r in runs] == [old, old] and [p.name for p in tmp_path.iterdir() if p.is_dir()] == [old.name]
    assert (runs[0].config.decay, runs[1].config.decay) == (None, 0.95)
    assert runs[0].generations[-1].metrics == runs[1].generations[-1].metrics

    # unfinished: resuming it as given with the other spelling is refused; the store continues it as stored
    shutil.rmtree(rundir.gen_dir(old, 2))
    with pytest.raises(ConfigMismatchError, match="decay"):
        run_self_consuming(f8, old)
    (run,) = store.ensure_runs([f8], tmp_path)
    assert run.run_dir == old and len(run.generations) == 2 and run.config.decay is None
    assert rundir.read_config(old).decay == 0.95


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_run_keys.py --write   (writes tests/data/run_keys.json)")
    write_fixture()
