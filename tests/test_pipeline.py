"""A run's models as diffusers pipelines (collapse_utils.pipeline), their model cards and sample grids.

Real tiny smoke runs: the pipeline loads a generation's model folder with no network, samples it with the run's
steps and guidance scale, and with the run's generator gives exactly the run's ``samples.npy``; diffusers' own
``DDPMPipeline`` keeps loading unconditional models; the model card and ``samples.png`` are written with every
model and change none of the run's numbers.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from collapse_utils import rundir
from collapse_utils.config import derive_seed, make_config
from collapse_utils.ddpm import batch_generator
from collapse_utils.loop import run_self_consuming
from collapse_utils.pipeline import CollapsePipeline
from collapse_utils.sample import sample_images

CPU = torch.device("cpu")
BASE = dict(n=20, generations=2, sample_batch_size=16, progress=False)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Loading must work offline: any connection attempt fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*_a, **_k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def uncond(tmp_path_factory):
    cfg = make_config("smoke", **BASE)
    return cfg, run_self_consuming(cfg, tmp_path_factory.mktemp("uncond") / "run")


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    cfg = make_config("smoke", conditional=True, **BASE)
    return cfg, run_self_consuming(cfg, tmp_path_factory.mktemp("cond") / "run")


def _load(gen_dir: Path) -> CollapsePipeline:
    pipe = CollapsePipeline.from_pretrained(gen_dir / "model")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _run_batch(cfg, g: int, b: int = 0) -> torch.Generator:
    """The generator of batch ``b`` of generation ``g``'s samples in the run."""
    return batch_generator(derive_seed(cfg.seed, g, "sample"), b, CPU)


# ---------------------------------------------------------------------- the same images as the run
@pytest.mark.parametrize("g", [1, 2])
def test_unconditional_pipeline_reproduces_the_runs_samples(uncond, g):
    cfg, result = uncond
    gen = result.generations[g - 1]
    pipe = _load(gen.dir)
    assert isinstance(pipe, CollapsePipeline) and not pipe.conditional
    assert pipe.default_num_inference_steps == cfg.num_inference_steps
    bs = cfg.sample_batch_size
    samples = gen.samples
    assert len(samples) > bs  # two batches, the second one short
    for b in range(2):
        want = samples[b * bs:(b + 1) * bs]
        out = pipe(batch_size=len(want), generator=_run_batch(cfg, g, b), output_type="uint8").images
        np.testing.assert_array_equal(out, want)


def test_conditional_pipeline_reproduces_the_runs_guided_samples(cond):
    cfg, result = cond
    gen = result.generations[1]
    pipe = _load(gen.dir)
    assert pipe.conditional and pipe.num_classes == cfg.num_classes
    assert pipe.default_guidance_scale == cfg.guidance_scale == 2.0
    assert pipe.default_num_inference_steps == cfg.num_inference_steps
    bs = cfg.sample_batch_size
    labels = gen.sample_labels
    for b in range(2):
        sl = slice(b * bs, (b + 1) * bs)
        out = pipe(class_labels=labels[sl], generator=_run_batch(cfg, 2, b), output_type="uint8").images
        np.testing.assert_array_equal(out, gen.samples[sl])


@pytest.mark.parametrize("w", [0.0, 1.0, 3.5])
def test_pipeline_equals_sample_images_at_any_scale_steps_and_labels(cond, w):
    cfg, result = cond
    gen = result.generations[0]
    pipe = _load(gen.dir)
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 10])  # 10 is the null class
    ref = sample_images(pipe.unet, pipe.scheduler, len(labels), seed=7, labels=labels, guidance_scale=w,
                        num_inference_steps=3, batch_size=16, device="cpu", recipe="reference", progress=False)
    out = pipe(class_labels=labels, guidance_scale=w, num_inference_steps=3, generator=batch_generator(7, 0, CPU),
               output_type="uint8").images
    np.testing.assert_array_equal(out, ref)


def test_conditional_without_labels_samples_unconditionally_as_sample_images(cond):
    cfg, result = cond
    pipe = _load(result.generations[0].dir)
    ref = sample_images(pipe.unet, pipe.scheduler, 5, seed=3, num_inference_steps=cfg.num_inference_steps,
                        device="cpu", recipe="reference", progress=False)
    out = pipe(batch_size=5, generator=batch_generator(3, 0, CPU), output_type="uint8").images
    np.testing.assert_array_equal(out, ref)
    null = pipe(class_labels=cfg.num_classes, batch_size=5, generator=batch_generator(3, 0, CPU),
                output_type="uint8").images
    np.testing.assert_array_equal(null, ref)


def test_output_types_agree(cond):
    cfg, result = cond
    pipe = _load(result.generations[0].dir)
    kw = dict(class_labels=[0, 1, 2], num_inference_steps=2)
    u8 = pipe(**kw, generator=batch_generator(0, 0, CPU), output_type="uint8").images
    f = pipe(**kw, generator=batch_generator(0, 0, CPU), output_type="np").images
    pil = pipe(**kw, generator=batch_generator(0, 0, CPU)).images  # "pil" by default, as DDPMPipeline
    (pt,) = pipe(**kw, generator=batch_generator(0, 0, CPU), output_type="pt", return_dict=False)
    assert f.dtype == np.float32 and f.shape == u8.shape and 0 <= f.min() and f.max() <= 1
    np.testing.assert_array_equal((f * 255).round().astype(np.uint8), u8)
    np.testing.assert_array_equal(np.stack([np.asarray(im) for im in pil]), u8[..., 0])
    assert pt.shape == (3, 1, 8, 8)


def test_bad_arguments_are_refused(uncond, cond):
    pipe_u = _load(uncond[1].generations[0].dir)
    with pytest.raises(ValueError, match="unconditional"):
        pipe_u(class_labels=[1, 2])
    pipe_c = _load(cond[1].generations[0].dir)
    with pytest.raises(ValueError, match="output_type"):
        pipe_c(output_type="jpeg")
    with pytest.raises(ValueError, match="batch_size"):
        pipe_c(batch_size=3, class_labels=[1, 2])
    with pytest.raises(ValueError, match="labels must lie"):
        pipe_c(class_labels=[11])


# ---------------------------------------------------------------------- diffusers' own loaders
def test_ddpm_pipeline_still_loads_unconditional_models_with_the_same_maths(uncond):
    from diffusers import DDPMPipeline, DiffusionPipeline

    cfg, result = uncond
    folder = result.generations[0].dir / "model"
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    ddpm = DDPMPipeline.from_pretrained(folder)
    assert type(ddpm) is DDPMPipeline and type(DiffusionPipeline.from_pretrained(folder)) is DDPMPipeline
    ddpm.set_progress_bar_config(disable=True)
    steps = cfg.num_inference_steps
    a = ddpm(batch_size=4, num_inference_steps=steps, generator=batch_generator(5, 0, CPU), output_type="np").images
    b = _load(result.generations[0].dir)(batch_size=4, generator=batch_generator(5, 0, CPU), output_type="np").images
    np.testing.assert_array_equal(a, b)


def test_save_pretrained_keeps_the_sampling_defaults(cond, tmp_path):
    pipe = _load(cond[1].generations[0].dir)
    pipe.save_pretrained(tmp_path / "copy")
    again = CollapsePipeline.from_pretrained(tmp_path / "copy")
    assert (again.default_num_inference_steps, again.default_guidance_scale) == (4, 2.0)


def test_folder_without_sampling_settings_gets_diffusers_defaults(uncond, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(uncond[1].generations[0].dir / "model", folder)
    (folder / rundir.SAMPLING_FILE).unlink()
    pipe = CollapsePipeline.from_pretrained(folder)
    assert (pipe.default_num_inference_steps, pipe.default_guidance_scale) == (1000, 1.0)


# ---------------------------------------------------------------------- model card and sample grid
@pytest.mark.parametrize("which", ["uncond", "cond"])
def test_model_card_names_the_run_and_how_to_load_it(which, request):
    cfg, result = request.getfixturevalue(which)
    for gen in result.generations:
        card = (gen.dir / "model" / "README.md").read_text()
        for text in (cfg.run_key(), f"preset `{cfg.preset}`", f"dataset `{cfg.dataset}`", f"n = {cfg.n}",
                     f"paradigm `{cfg.paradigm}`", f"selection `{cfg.selection}`", f"Generation {gen.generation}",
                     f"{cfg.num_inference_steps} DDPM ancestral steps", f"seed {cfg.seed}", "arXiv:2509.16499",
                     "CollapsePipeline.from_pretrained", f"gen_{gen.generation:02d}/model"):
            assert text in card, text
        assert ("guidance w = 2" in card) == cfg.conditional
        settings = json.loads((gen.dir / "model" / "sampling.json").read_text())
        assert settings["num_inference_steps"] == cfg.num_inference_steps and settings["generation"] == gen.generation
        assert settings["guidance_scale"] == (cfg.guidance_scale if cfg.conditional else None)


def test_samples_grid_one_row_per_class(cond, uncond):
    cfg, result = cond
    img = Image.open(result.generations[0].dir / "samples.png")
    tile = 32 + 1  # 8-pixel samples enlarged 4×, 1-pixel gaps
    assert img.size == (8 * tile + 1, cfg.num_classes * tile + 1) and img.mode == "L"
    grid = np.asarray(img)
    gen = result.generations[0]
    first_of_2 = gen.samples[gen.sample_labels == 2][0, ..., 0].repeat(4, 0).repeat(4, 1)
    np.testing.assert_array_equal(grid[1 + 2 * tile:1 + 2 * tile + 32, 1:33], first_of_2)
    u = Image.open(uncond[1].generations[0].dir / "samples.png")
    rows = -(-min(len(uncond[1].generations[0].samples), 64) // 8)
    assert u.size == (8 * tile + 1, rows * tile + 1)


def test_docs_are_not_hashed_and_change_no_artifact(uncond, tmp_path, monkeypatch):
    cfg, result = uncond
    for gen in result.generations:
        recorded = json.loads((gen.dir / "hashes.json").read_text())
        assert not any(n.endswith(("README.md", "sampling.json", "samples.png")) for n in recorded)
    monkeypatch.setattr(rundir, "write_model_docs", lambda *a, **k: None)
    monkeypatch.setattr(rundir, "ensure_samples_grid", lambda *a, **k: None)
    bare = run_self_consuming(cfg, tmp_path / "bare")
    for a, b in zip(result.generations, bare.generations):
        assert not (b.dir / "samples.png").exists() and not (b.dir / "model" / "README.md").exists()
        for f in sorted(a.dir.rglob("*")):
            if f.suffix in (".npy", ".safetensors") or f.name in ("train_log.json", "hashes.json"):
                assert f.read_bytes() == (b.dir / f.relative_to(a.dir)).read_bytes(), f
