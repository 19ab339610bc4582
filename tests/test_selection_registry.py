"""The selection-method registry (collapse_utils.core.methods): the built-ins are entries like any other, a method
of one's own is named ``module:function`` and reaches the run store's spawned workers, its source is in its run
key, and a method that does not fit the feature space is refused before anything is trained or written."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import numpy as np
import pytest

from collapse_utils.core import methods
from collapse_utils.core.config import KEY_FIELDS_V1, RunConfig, make_config
from collapse_utils.core.vocab import FEATURE_SPACES, SELECTION_METHODS
from collapse_utils.loop import selection as S

FAST = dict(n=16, generations=2, train_steps=2, num_inference_steps=2, progress=False, tracker="none")

PLUGIN = '''
import os
import numpy as np
from collapse_utils.core.methods import selection_method

MARK = os.path.join(os.path.dirname(__file__), "calls.txt")


@selection_method(params={"start": (0, "index of the first centre")}, spaces=("pixel",), label="k-centre greedy",
                  short="k-centre")
def kcenter(features, n, *, seed=0, start=0):
    """k-centre greedy (farthest point first), deterministic from ``start``."""
    with open(MARK, "a") as f:
        f.write(f"{os.getpid()}\\n")
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    picked = [start]
    d = ((x - x[start]) ** 2).sum(1)
    while len(picked) < n:
        i = int(np.argmax(d))
        picked.append(i)
        d = np.minimum(d, ((x - x[i]) ** 2).sum(1))
    return np.array(picked, dtype=np.int64)


def undeclared(features, n, *, seed=0, reverse=False):
    idx = np.arange(n)
    return idx[::-1].copy() if reverse else idx


def duplicates(features, n, *, seed=0):
    return np.zeros(n, dtype=np.int64)
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A module file with plug-in methods on sys.path, under a fresh name: (module name, its file)."""
    name = f"plug_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "mods" / f"{name}.py"
    path.parent.mkdir()
    path.write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(path.parent))
    monkeypatch.setenv("PYTHONPATH", "")
    return name, path


# ----------------------------------------------------------------------------------------- the registry
def test_the_builtins_are_registered_with_their_display():
    assert set(methods.method_names()) == set(SELECTION_METHODS)
    assert methods.method_names()[:3] == ("none", "threshold", "greedy")  # legend order
    tdf = methods.get_method("threshold")
    assert tdf.spaces == ("pixel", "dinov2", "inception") and "lenet" in FEATURE_SPACES
    assert tdf.defaults_for("dinov2", "accumulate") == S.default_filter_params("dinov2", "accumulate")
    assert methods.get_method("greedy").spaces == FEATURE_SPACES


def test_labels_and_colours_come_from_the_registry(monkeypatch):
    from collapse_utils.paper import analysis, demo
    from collapse_utils.paper.claims import statistics as claims

    assert analysis.method_label("greedy") == methods.label_of("greedy") == "Greedy Selection"
    assert analysis.method_label("threshold", decay=0.8) == "Threshold Decay Filter (α = 0.80)"
    assert claims._arm_name({"paradigm": "accumulate_subsample", "selection": "threshold"}) == "accumulate TDF"
    assert demo.describe_arm(make_config("smoke", selection="greedy", n=16)) == "replace + Greedy n=16"
    mine = methods.SelectionMethod("mine", S.select_none, label="My method", short="mine")
    monkeypatch.setitem(methods._REGISTRY, "mine", methods._completed(mine))
    assert analysis.method_label("mine") == "My method" and methods.colour_of("mine") in methods.PLUGIN_COLOURS
    assert demo.describe_arm(make_config("smoke", selection="mine", n=16)) == "replace + mine n=16"
    assert "mine" in claims._arm_name({"selection": "mine"})


def test_run_help_lists_the_registered_methods():
    from collapse_utils.__main__ import build_parser

    parser = build_parser()
    run = next(a for a in parser._subparsers._group_actions[0].choices.values() if a.prog.endswith(" run"))
    text = run.format_help()
    for name in SELECTION_METHODS:
        assert name in text
    assert "module:function" in text and "Threshold Decay Filter" in text
    args = parser.parse_args(["run", "--preset", "smoke", "--selection", "a.b:c", "--selection-params", '{"k": 3}',
                              "--out", "x"])
    assert args.selection == "a.b:c" and args.selection_params == {"k": 3}


# ----------------------------------------------------------------------------------------- run keys
def test_the_new_field_moves_no_key():
    assert "selection_params" not in KEY_FIELDS_V1
    for sel in SELECTION_METHODS:
        cfg = make_config("smoke", selection=sel)
        assert "selection_params" not in cfg.key_dict()
        assert cfg.replace(selection_params={}).run_key() == cfg.run_key() == cfg.replace(selection_params=None).run_key()
        assert "selection_source_sha256" not in cfg.canonical_key_dict()
    with pytest.raises(ValueError, match="built in and takes no selection_params"):
        make_config("smoke", selection="greedy", selection_params={"k": 1})


def test_a_plugin_key_follows_its_source(plugin):
    name, path = plugin
    cfg = make_config("smoke", selection=f"{name}:kcenter", **FAST)
    key = cfg.run_key()
    assert cfg.canonical_key_dict()["selection_source_sha256"] == methods._file_digest(path)
    assert cfg.run_key_aliases() == ()
    assert cfg.replace(selection_params={"start": 1}).run_key() != key
    path.write_text(PLUGIN + "\n# an edit\n")
    assert cfg.run_key() != key
    with pytest.raises(ValueError, match=r"takes no parameter\(s\) \['k'\]"):
        cfg.replace(selection_params={"k": 1})


def test_a_plugin_without_a_decorator_gets_an_inferred_spec(plugin):
    name, _ = plugin
    m = methods.get_method(f"{name}:undeclared")
    assert [p.name for p in m.params] == ["reverse"] and m.spaces == FEATURE_SPACES and m.label == "undeclared"
    x = np.random.default_rng(0).normal(size=(10, 3))
    np.testing.assert_array_equal(S.select(f"{name}:undeclared", x, 3, reverse=True), [2, 1, 0])
    with pytest.raises(ValueError, match="distinct indices"):
        S.select(f"{name}:duplicates", x, 3)
    # an edited module is reloaded: the run key and the code that runs stay the same version
    path = plugin[1]
    path.write_text(PLUGIN.replace("idx = np.arange(n)", "idx = np.arange(n) + 1"))
    np.testing.assert_array_equal(S.select(f"{name}:undeclared", x, 3), [1, 2, 3])


@pytest.mark.parametrize("path,match", [
    ("no_such_module_zz:f", "cannot import module 'no_such_module_zz'"),
    ("os.path:no_such_function", "has no attribute 'no_such_function'"),
    ("os:sep", "is not a function"),
    ("kmeans", "unknown selection method 'kmeans'; choose one of none, threshold, greedy, random"),
    ("a b:c", "'module:function'"),
])
def test_bad_method_names_fail_at_once(path, match):
    with pytest.raises(ValueError, match=match):
        make_config("smoke", selection=path)


# ----------------------------------------------------------------------------------------- preflight
def test_a_method_and_space_that_do_not_fit_are_refused_before_anything_is_written(tmp_path, plugin):
    from collapse_utils.loop.run import run_self_consuming
    from collapse_utils.loop.store import ensure_runs

    cfg = make_config("smoke", selection="threshold", feature_space="lenet", **FAST)  # a valid configuration
    with pytest.raises(ValueError, match=r"'threshold' does not support feature_space 'lenet'; it supports pixel, "
                                         r"dinov2, inception"):
        run_self_consuming(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    ok = make_config("smoke", **FAST)
    with pytest.raises(ValueError, match="does not support feature_space 'lenet'"):
        ensure_runs([ok, cfg], tmp_path / "store", workers=2)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())
    name, _ = plugin
    with pytest.raises(ValueError, match="supports pixel"):
        run_self_consuming(make_config("smoke", selection=f"{name}:kcenter", feature_space="inception", **FAST),
                           tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


# ----------------------------------------------------------------------------------------- a plug-in run
def test_a_plugin_runs_in_the_stores_spawned_workers(tmp_path, plugin):
    import os

    from collapse_utils.loop.store import ensure_runs

    name, path = plugin
    cfgs = [make_config("smoke", selection=f"{name}:kcenter", seed=s, **FAST) for s in (0, 1)]
    runs = ensure_runs(cfgs, tmp_path / "store", workers=2)
    key = cfgs[0].run_key()
    for run, cfg in zip(runs, cfgs):
        assert [g.generation for g in run.generations] == [1, 2]
        assert run.config.selection == f"{name}:kcenter" and run.run_dir.name.endswith(cfg.run_key())
        assert ":" not in run.run_dir.name
    callers = {int(p) for p in (path.parent / "calls.txt").read_text().split()}
    assert callers and os.getpid() not in callers  # selected inside the workers
    # generation 2 trains on the plug-in's picks of generation 1's 2n samples
    from collapse_utils.loop import rundir

    first = runs[0]
    samples = rundir.load_samples(rundir.gen_dir(first.run_dir, 1), 1).images
    train = np.load(rundir.gen_dir(first.run_dir, 2) / "train.npy")
    from importlib import import_module

    picks = import_module(name).kcenter(samples.reshape(len(samples), -1).astype(np.float32), 16)
    np.testing.assert_array_equal(train, samples[picks])
    # reused, not recomputed; an edit to the method makes new runs
    assert ensure_runs(cfgs, tmp_path / "store")[0].run_dir == first.run_dir
    path.write_text(PLUGIN.replace("picked = [start]", "picked = [start]  # edited"))
    assert cfgs[0].run_key() != key


def test_config_dict_round_trip_keeps_the_plugin(plugin):
    name, _ = plugin
    cfg = make_config("smoke", selection=f"{name}:kcenter", selection_params={"start": 2}, **FAST)
    again = RunConfig.from_dict(cfg.to_dict())
    assert again.run_key() == cfg.run_key() and again.selection_params == {"start": 2}
    assert {f.name for f in dataclasses.fields(RunConfig)} >= {"selection_params"}


def test_subprocesses_find_a_resolved_plugin(plugin):
    """Sweep tasks (submitit) and notebook kernels are new processes that inherit the environment, not sys.path:
    resolving a plug-in puts its folder on PYTHONPATH, so a task rebuilds the same configuration and key."""
    import json
    import os
    import subprocess
    import sys

    name, path = plugin
    cfg = make_config("smoke", selection=f"{name}:kcenter", **FAST)
    assert str(path.parent) in os.environ["PYTHONPATH"].split(os.pathsep)
    code = ("import json, sys; from collapse_utils.core.config import RunConfig; "
            "print(RunConfig.from_dict(json.loads(sys.argv[1])).run_key())")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(cfg.to_dict())], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == cfg.run_key()


# ----------------------------------------------------------------------------------------- the explore notebook
@pytest.mark.slow
def test_the_explore_notebook_compares_a_new_method_at_smoke_scale(tmp_path):
    """notebooks/explore_selection.ipynb through papermill: it writes its method next to the run store, trains it
    in spawned workers beside vanilla / Greedy / TDF, draws the curves and prints the verdicts; the figure batch
    never picks it up."""
    import pandas as pd
    import papermill

    from collapse_utils.paper import batch as figure_batch

    assert "explore_selection" not in {p.stem for p in figure_batch.discover_notebooks().values()}
    nb = figure_batch.notebooks_dir() / "explore_selection.ipynb"
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(nb), str(out), kernel_name="python3", cwd=str(figure_batch.repo_root()),
                               progress_bar=False,
                               parameters=dict(preset="smoke", seeds=[0, 1], workers=2, run_root=str(tmp_path / "runs"),
                                               fig_dir=str(tmp_path / "figs")))
    table = pd.read_csv(tmp_path / "figs" / "explore_selection.csv")
    assert set(table["arm"]) == {"vanilla", "Greedy", "TDF", "new"} and set(table["seed"]) == {0, 1}
    assert (tmp_path / "figs" / "explore_selection.png").exists()
    assert (tmp_path / "runs" / "_methods" / "explore_selection_methods.py").exists()
    new_runs = set(table.loc[table["arm"] == "new", "run"])
    assert len(new_runs) == 2 and all("explore_selection_methods_kmeanspp" in r for r in new_runs)
    text = "".join(o.get("text", "") for c in nbformat_read(out).cells for o in c.get("outputs", []))
    assert "the new method keeps gs_pixel higher than Greedy" in text and "(k = 2)" in text


def nbformat_read(path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_figure_notebooks_take_a_plugin_method_by_path():
    from collapse_utils.paper.figures import parameter_error

    assert parameter_error("methods", ["none", "greedy", "mymethods:kcenter"]) is None
    assert "module:function" in parameter_error("methods", ["bogus"])
