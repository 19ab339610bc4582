"""A command's first line names the model actually trained: a run with --model-family dit says it trains a DiT,
not the preset's UNet."""

from __future__ import annotations

from collapse_utils.__main__ import main
from collapse_utils.core.cli_common import headline
from collapse_utils.core.presets import PRESET_SUMMARIES


def test_the_headline_names_a_model_family_other_than_the_preset_s():
    for preset in PRESET_SUMMARIES:
        assert headline("run", preset) == headline("run", preset, model_family="unet")
        line = headline("run", preset, model_family="dit")
        assert PRESET_SUMMARIES[preset] in line
        assert "the model: DiT (--model-family dit) in place of the preset's UNet" in line


def test_a_dit_run_says_so_in_its_first_line(tmp_path, capsys):
    absent = tmp_path / "absent.npy"  # refused before anything is trained
    assert main(["run", "--preset", "smoke", "--model-family", "dit", "--dataset", f"npy:{absent}",
                 "--tracker", "none", "--out", str(tmp_path / "run")]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("collapse_utils run · preset smoke (") and "DiT (--model-family dit)" in first
