"""The command line explains itself: option help with units and per-preset values, plain-text descriptions,
the demo's plan options, and a `run` that reports each generation (and the time left) as it finishes."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from collapse_utils.paper import demo
from collapse_utils.__main__ import _shown, build_parser, config_fields, main
from collapse_utils.core.presets import PRESET_SUMMARIES, preset_overrides
from collapse_utils.core.vocab import PRESETS


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **sub.choices}




def _default(f: dataclasses.Field):
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


# ---------------------------------------------------------------------------------------------- a light CLI
REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "diffusers")


def _imported(*argv: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -X importtime -m collapse_utils ARGV`` and return the process and every module it imported
    (the top-level package names of Python's import-time log on stderr)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "collapse_utils", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in proc.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return proc, names


@pytest.mark.parametrize("argv", [["--help"], ["--version"], *([c, "--help"] for c in
                                                                ("run", "demo", "figures", "sweep", "claims", "bundle"))],
                         ids=lambda a: " ".join(a))
def test_help_and_version_do_not_import_torch_or_diffusers(argv):
    """Help and version come before any model code: the command line loads torch and diffusers only in the
    command that needs them (a second for --help instead of several)."""
    proc, names = _imported(*argv)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "collapse_utils" in names and "argparse" in names  # the log was read
    assert proc.stdout.strip()  # the help or the version was printed
    assert not names & set(HEAVY), sorted(names & set(HEAVY))


def test_every_command_is_covered_by_the_import_check():
    assert set(_commands()) - {""} == {"run", "demo", "figures", "sweep", "claims", "bundle"}


# ---------------------------------------------------------------------------------------------- presets said
def test_every_command_states_its_default_preset_in_its_help():
    defaults = {"demo": "demo", "figures": "demo", "claims": "demo", "sweep": "paper", "bundle": "demo"}
    for name, parser in _commands().items():
        if not name:
            continue
        action = next(a for a in parser._actions if a.dest == "preset")
        help_text = " ".join(action.help.split())
        assert action.default == defaults.get(name), name
        assert (f"[default: {defaults[name]}]" if name in defaults else "[no default: give one]") in help_text, name
    top = " ".join(_commands()[""].format_help().split())
    assert "demo for demo, figures, claims and bundle, and paper for sweep; run has none" in top


def test_run_without_a_preset_is_refused_naming_the_presets(tmp_path, capsys):
    assert main(["run", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "run needs --preset" in err
    for preset in PRESETS:
        assert f"    {preset} " in err and " ".join(PRESET_SUMMARIES[preset].split())[:30] in " ".join(err.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, first", [
    (["figures", "--preset", "smoke", "--only", "F2", "--param", "size=16"], "collapse_utils figures · preset smoke ("),
    (["figures", "--only", "F2", "--param", "size=16"], "collapse_utils figures · preset demo ("),
    (["sweep", "--only", "F2", "--plan", "--param", "size=16"], "collapse_utils sweep · preset paper ("),
])
def test_first_line_names_the_preset_and_unknown_figure_parameters_are_refused(argv, first, tmp_path, capsys):
    rc = main([*argv, "--run-root", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.splitlines()
    assert lines[0].startswith(first), lines[0]
    preset = first.split("preset ")[1].split(" ")[0]
    assert " ".join(PRESET_SUMMARIES[preset].split()) in lines[0]
    assert ("the default preset of" in lines[0]) == ("--preset" not in argv)
    assert "unknown figure parameter(s) size" in err and "sizes" in err and "generations" in err
    assert not (tmp_path / "runs").exists()  # refused before anything was trained


# ---------------------------------------------------------------------------------------------- run --help
def test_every_run_option_names_its_value_in_every_preset():
    by_dest = {a.dest: a for a in _commands()["run"]._actions}
    for f in config_fields():
        help_text = by_dest[f.name].help.replace("%%", "%")
        values = {p: _shown(preset_overrides(p).get(f.name, _default(f))) for p in PRESETS}
        if len(set(values.values())) == 1:
            assert f"[every preset: {values['smoke']}]" in help_text, (f.name, help_text)
        else:
            assert "[" + " · ".join(f"{p} {v}" for p, v in values.items()) + "]" in help_text, (f.name, help_text)
    assert "[smoke 4 · demo 1200 · paper 128256]" in by_dest["train_steps"].help
    assert "[smoke 4 · demo 50 · paper 1000]" in by_dest["num_inference_steps"].help


@pytest.mark.parametrize("name, unit", [("train_steps", "steps"), ("warmup_steps", "steps"),
                                        ("checkpoint_every", "steps"), ("n", "images"), ("batch_size", "images"),
                                        ("sample_batch_size", "images"), ("resolution", "pixels"),
                                        ("num_inference_steps", "steps"), ("generations", "generations")])
def test_run_options_name_their_unit(name, unit):
    by_dest = {a.dest: a for a in _commands()["run"]._actions}
    assert unit in by_dest[name].help


def test_run_help_describes_every_preset_and_renders():
    text = _commands()["run"].format_help()
    flat = " ".join(text.split())
    for preset in PRESETS:
        assert f"  {preset} " in text and " ".join(PRESET_SUMMARIES[preset].split()) in flat
    assert "--train-steps" in text and "paper 128256" in flat


def test_help_texts_are_plain_text_for_users():
    rst = re.compile(r"``|:(func|class|mod|data|meth|attr):")
    for name, parser in _commands().items():
        text = parser.format_help()
        assert not rst.search(text), (name, rst.search(text).group(0))
    top = _commands()[""].format_help()
    for command in ("run", "demo", "figures"):
        assert f"python -m collapse_utils {command}" in top
    assert "README.md" in top and "Model Collapse" in top


# ---------------------------------------------------------------------------------------------- demo options
# The demo's run keys, computed on the code before the demo took plan options: left out, they change nothing.
DEMO_KEYS = {
    "demo": {"sweep": ["2985caae7762", "94b0468b5483", "504104d226fe"],
             "selection": ["94b0468b5483", "6ead31cfb2b1", "b79352099895", "27058d60594f"]},
    "smoke": {"sweep": ["b4afdbc0ff2d", "c412d2f76bc1"],
              "selection": ["b4afdbc0ff2d", "27429e5f6d73", "f96ef142ddd3", "7e2c6ccbbca2"]},
}


@pytest.mark.parametrize("preset", ["demo", "smoke"])
def test_demo_plan_without_options_is_unchanged(preset):
    plan = demo.demo_plan(preset)
    assert [c.run_key() for c in plan.sweep] == DEMO_KEYS[preset]["sweep"]
    assert [c.run_key() for c in plan.selection] == DEMO_KEYS[preset]["selection"]
    args = build_parser().parse_args(["demo", "--preset", preset])
    cli_plan = demo.demo_plan(preset, **demo.plan_options(args))
    assert [c.run_key() for c in cli_plan.configs] == [c.run_key() for c in plan.configs]
    assert demo.plan_folder(demo.plan_options(args)) == "demo"


def test_demo_takes_seed_and_generations():
    args = build_parser().parse_args(["demo", "--seed", "3", "--generations", "2", "--preset", "smoke"])
    assert args.func is demo._cmd_demo
    plan = demo.demo_plan(args.preset, **demo.plan_options(args))
    assert {(c.seed, c.generations) for c in plan.configs} == {(3, 2)}
    assert len(plan.configs) == len(demo.demo_plan("smoke").configs)
    assert demo.plan_folder(demo.plan_options(args)) == "demo-seed3-gen2"


def test_demo_takes_sizes_and_keeps_vanilla_replace_shared():
    args = build_parser().parse_args(["demo", "--sizes", "256,64,1024"])
    plan = demo.demo_plan(args.preset, **demo.plan_options(args))
    assert [c.n for c in plan.sweep] == [64, 256, 1024]
    assert plan.selection_n == 256  # the preset's 128 is not among them: the middle size
    assert plan.selection[0].run_key() in {c.run_key() for c in plan.sweep}
    with pytest.raises(ValueError, match="not one of the sweep sizes"):
        demo.demo_plan("demo", sizes=(64, 256), selection_n=100)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--sizes", "64,x"])


# ---------------------------------------------------------------------------------------------- run reports
def test_generation_clock_estimates_from_measured_times():
    from collapse_utils.loop.run import GenerationClock, format_duration

    now = [0.0]
    clock = GenerationClock(4, reused=[1], clock=lambda: now[0])
    lines = []
    for g, took in [(1, 0.0), (2, 60.0), (3, 80.0), (4, 70.0)]:
        now[0] += took
        lines.append(clock.finished(g))
    assert lines[0] == "generation 1/4 finished earlier (reused)"
    assert lines[1] == "generation 2/4 done in 1 min 00 s; about 2 min 00 s left (2 to go)"
    assert lines[2] == "generation 3/4 done in 1 min 20 s; about 1 min 10 s left (1 to go)"
    assert lines[3].startswith("generation 4/4 done in 1 min 10 s; run finished (3 min 30 s")
    assert [format_duration(s) for s in (0.2, 5, 7300, 90000)] == ["under 1 s", "5 s", "2 h 01 min", "1 d 01 h"]


def test_run_prints_each_generation_as_it_finishes(tmp_path, capsys, monkeypatch):
    from collapse_utils.loop import run as loop
    from collapse_utils.diffusion import sample, train

    bars = []

    def recording_tqdm(*args, **kwargs):
        bars.append((kwargs.get("desc"), kwargs.get("leave")))
        return real_tqdm(*args, **{**kwargs, "disable": True})

    real_tqdm = train.tqdm
    monkeypatch.setattr(train, "tqdm", recording_tqdm)
    monkeypatch.setattr(sample, "tqdm", recording_tqdm)
    seen_before = {}
    real_generation = loop.run_generation

    def generation(cfg, g, *args, **kwargs):
        captured = capsys.readouterr()
        seen_before[g] = (captured.out, captured.err)
        return real_generation(cfg, g, *args, **kwargs)

    monkeypatch.setattr(loop, "run_generation", generation)
    code = main(["run", "--preset", "smoke", "--n", "12", "--generations", "2", "--train-steps", "2",
                 "--sample-steps", "2", "--out", str(tmp_path / "myrun")])
    assert code == 0
    rest = capsys.readouterr()
    # generation 1's row and time were printed before generation 2 started
    row1 = json.loads(seen_before[2][0].strip())
    assert row1["generation"] == 1 and row1["run"] == "myrun" and "timings" not in row1
    assert "generation 1/2 done in" in seen_before[2][1] and "left (1 to go)" in seen_before[2][1]
    rows = [json.loads(line) for line in rest.out.strip().splitlines()]  # stdout: JSON rows only
    assert [r["generation"] for r in rows] == [2]
    assert "generation 2/2 done in" in rest.err and "run finished" in rest.err
    assert ("myrun gen 1/2 train", True) in bars and ("myrun gen 2/2 sample", True) in bars
    # a rerun reuses both generations and prints the same rows
    assert main(["run", "--preset", "smoke", "--n", "12", "--generations", "2", "--train-steps", "2",
                 "--sample-steps", "2", "--no-progress", "--out", str(tmp_path / "myrun")]) == 0
    again = capsys.readouterr()
    rerun = [json.loads(line) for line in again.out.strip().splitlines()]
    assert rerun == [row1, rows[0]]
    assert "generation 2/2 finished earlier (reused)" in again.err


def test_demo_progress_line_says_how_long_is_left(tmp_path):
    configs = demo.demo_plan("smoke").configs
    monitor = demo.ProgressMonitor(configs, tmp_path, out=lambda s: None)
    monitor.finished = 2
    line = monitor._line(configs[0], 2, {"gs_pixel": 1.0, "entropy_pixel": 2.0})
    assert "2/10 generations" in line and "left" in line


# ---------------------------------------------------------------------------------------------- run's messages
SMALL_RUN = ["run", "--preset", "smoke", "--n", "12", "--train-steps", "2", "--sample-steps", "2", "--no-progress"]


def test_a_config_change_is_suggested_only_where_it_is_allowed(tmp_path, capsys):
    """The error of a changed configuration suggests --allow-config-change only when that flag would be accepted
    (a new --generations); a change the flag cannot make consistent names the way out that works."""
    out = str(tmp_path / "run")
    assert main([*SMALL_RUN, "--generations", "1", "--out", out]) == 0
    capsys.readouterr()
    # a new n over a computed generation: the flag would be refused, so it is not offered
    assert main([*SMALL_RUN, "--generations", "1", "--n", "16", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "n: 12 (run) vs 16 (now)" in err and "delete" in err and "only generations can change in place" in err
    assert "to continue" not in err
    assert main([*SMALL_RUN, "--generations", "1", "--n", "16", "--allow-config-change", "--out", out]) == 2
    assert "cannot keep" in capsys.readouterr().err
    # more generations: the flag is offered, and following the advice works
    assert main([*SMALL_RUN, "--generations", "2", "--out", out]) == 2
    err = capsys.readouterr().err
    assert "generations: 1 (run) vs 2 (now)" in err and "--allow-config-change) to continue" in err
    assert main([*SMALL_RUN, "--generations", "2", "--allow-config-change", "--out", out]) == 0
    assert [json.loads(line)["generation"] for line in capsys.readouterr().out.splitlines()] == [1, 2]


def test_the_package_s_warnings_are_one_clean_line(tmp_path):
    """A paper-size model on a CPU is announced as one `notice:` line, without Python's warning file and line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "collapse_utils", "run", "--preset", "paper", "--device", "cpu",
                           "--dataset", f"npy:{tmp_path / 'absent.npy'}", "--tracker", "none", "--out",
                           str(tmp_path / "run")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]  # the absent data stops it before anything is trained
    assert lines[0].startswith("collapse_utils run · preset paper (")
    notice = [line for line in lines if "takes days per generation" in line]
    assert len(notice) == 1 and notice[0].startswith("notice: unet48 for 128,256 training steps on a CPU"), lines
    assert "RuntimeWarning" not in proc.stderr and "run_self_consuming(" not in proc.stderr
