import pytest
import torch

from collapse_utils.core.config import PRESETS, RunConfig, make_config
from collapse_utils.diffusion.models import build_scheduler, build_unet, count_parameters, min_resolution


@pytest.mark.parametrize("name, millions", [("unet32", 7.13), ("unet48", 16.01), ("unet64", 28.45), ("unet128", 113.67)])
def test_paper_unet_parameter_counts(name, millions):
    model = build_unet(name, resolution=32, channels=3)
    assert round(count_parameters(model) / 1e6, 2) == millions


def test_paper_unet_layout():
    cfg = build_unet("unet48", resolution=32, channels=3).config
    assert tuple(cfg.block_out_channels) == (48, 48, 96, 96, 192, 192)
    assert cfg.layers_per_block == 2 and cfg.norm_num_groups == 16
    assert cfg.down_block_types[4] == "AttnDownBlock2D" and cfg.up_block_types[1] == "AttnUpBlock2D"
    assert sum("Attn" in b for b in cfg.down_block_types + cfg.up_block_types) == 2


def test_grayscale_and_conditional_variants():
    grey = build_unet("unet48", resolution=32, channels=1)
    assert grey.config.in_channels == grey.config.out_channels == 1
    cond = build_unet("tiny", resolution=8, channels=1, num_classes=10)
    assert cond.class_embedding.num_embeddings == 11  # ten digits plus the null class
    x = torch.zeros(2, 1, 8, 8)
    out = cond(x, torch.tensor([1, 2]), class_labels=torch.tensor([3, 10])).sample
    assert out.shape == x.shape


def test_resolution_must_fit_the_unet():
    assert min_resolution("unet48") == 32
    with pytest.raises(ValueError, match="not divisible"):
        build_unet("unet48", resolution=28, channels=1)
    with pytest.raises(ValueError, match="unknown model"):
        build_unet("unet999", resolution=32, channels=1)


def test_scheduler_is_the_authors():
    s = build_scheduler()
    assert s.config.num_train_timesteps == 1000 and s.config.beta_schedule == "linear"
    assert s.config.prediction_type == "epsilon" and s.config.clip_sample
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)


def test_paper_preset_is_the_authors_recipe():
    c = make_config("paper")
    assert (c.lr, c.adam_betas, c.weight_decay, c.adam_eps) == (1e-4, (0.95, 0.999), 1e-6, 1e-8)
    assert (c.warmup_steps, c.grad_clip, c.batch_size, c.mixed_precision) == (500, 1.0, 128, "fp16")
    assert c.train_steps == 128_256 and c.num_inference_steps == 1000 and c.n == 32768 and c.model == "unet48"


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_build(preset):
    assert make_config(preset).extra["preset"] == preset


@pytest.mark.parametrize("bad, match", [
    (dict(n=0), "n must be positive"),
    (dict(paradigm="bogus"), "paradigm"),
    (dict(selection="bogus"), "selection"),
    (dict(feature_space="bogus"), "feature_space"),
    (dict(pool_factor=0), "pool_factor"),
    (dict(threshold=0.0), "threshold"),
    (dict(decay=1.0), "decay"),
    (dict(decay=0.0), "decay"),
    (dict(paradigm="fresh", fresh_fraction=0.0), "fresh_fraction"),
    (dict(paradigm="replace_2n", selection="greedy"), "replace_2n"),
    (dict(num_inference_steps=2000), "num_inference_steps"),
])
def test_impossible_settings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        make_config("smoke", **bad)


def test_run_key_ignores_execution_fields_only():
    a = make_config("smoke")
    assert a.run_key() == a.replace(device="cuda", checkpoint_every=7, progress=False).run_key()
    assert a.run_key() != a.replace(seed=1).run_key()
    assert a.run_key() != a.replace(selection="greedy").run_key()
    assert RunConfig.from_dict(a.to_dict()).run_key() == a.run_key()


def test_samples_per_generation_follows_the_authors():
    base = make_config("smoke", n=10)
    assert base.samples_per_generation == 10
    assert base.replace(paradigm="replace_2n").samples_per_generation == 20
    assert base.replace(selection="greedy").samples_per_generation == 20  # select n of 2n
    assert base.replace(selection="greedy", pool_factor=5).samples_per_generation == 50
    assert base.replace(paradigm="accumulate_subsample", selection="greedy").samples_per_generation == 10


def test_run_cli_options_come_from_config_fields():
    """Every RunConfig field (but the few the CLI sets through its own flags) is a `run` option with help text,
    and parsed values reach the config with the field's type."""
    import argparse
    import dataclasses

    from collapse_utils.__main__ import build_parser, config_fields

    parser = build_parser()
    run = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    by_dest = {a.dest: a for a in run._actions}
    skipped = {f.name for f in dataclasses.fields(RunConfig)} - {f.name for f in config_fields()}
    assert skipped == {"recipe", "progress", "extra"}
    for f in config_fields():
        assert f.name in by_dest, f.name
        assert by_dest[f.name].help and len(by_dest[f.name].help) > 10, f.name
    args = parser.parse_args(["run", "--preset", "smoke", "--out", "x", "--n", "24", "--lr", "0.002", "--adam-betas", "0.9,0.99",
                              "--metrics", "gs_pixel, mnnd", "--conditional", "--sample-steps", "7"])
    cfg = make_config(args.preset, **{f.name: getattr(args, f.name) for f in config_fields()})
    assert (cfg.n, cfg.lr, cfg.adam_betas, cfg.metrics, cfg.conditional, cfg.num_inference_steps) == \
        (24, 0.002, (0.9, 0.99), ("gs_pixel", "mnnd"), True, 7)
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--out", "x", "--paradigm", "nope"])


@pytest.mark.parametrize("overrides, field", [
    (dict(n="abc"), "n must be an integer"), (dict(n=2.5), "n must be an integer"),
    (dict(n=float("nan")), "n must be an integer"), (dict(n=True), "n must be an integer"),
    (dict(generations=2.5), "generations must be an integer"), (dict(seed=1.5), "seed must be an integer"),
    (dict(seed=-1), "seed must be a non-negative integer"), (dict(lr=float("nan")), "lr must be a finite number"),
    (dict(lr="fast"), "lr must be a number"), (dict(paradigm=3), "paradigm must be a string"),
    (dict(conditional="yes"), "conditional must be True or False"), (dict(metrics="gs_pixel"), "metrics must be a list"),
    (dict(adam_betas=("a", 0.9)), "adam_betas must be a list of numbers"), (dict(channels=2), "channels must be 1 or 3"),
])
def test_config_refuses_wrong_types_naming_the_field(overrides, field):
    with pytest.raises(ValueError) as err:
        make_config("smoke", **overrides)
    assert field in str(err.value)
    assert "TypeError" not in str(err.value)


def test_config_takes_numpy_scalars_as_numbers():
    import numpy as np

    cfg = make_config("smoke", n=np.int64(24), lr=np.float32(0.5), conditional=np.bool_(True))
    assert (type(cfg.n), type(cfg.lr), type(cfg.conditional)) == (int, float, bool)
    assert cfg.run_key() == make_config("smoke", n=24, lr=float(np.float32(0.5)), conditional=True).run_key()
