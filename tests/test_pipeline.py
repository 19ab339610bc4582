"""A run's models as diffusers pipelines (collapse_utils.diffusion.pipeline), their model cards and sample grids.

Real tiny smoke runs: the pipeline loads a generation's model folder with no network, samples it with the run's
steps and guidance scale, and with the run's generator gives exactly the run's ``samples.npy``; diffusers' own
``DDPMPipeline`` keeps loading unconditional models, and ``DiffusionPipeline.from_pretrained`` loads conditional
ones as ``CollapsePipeline`` (with ``trust_remote_code=True``, else it stops naming the code file and the flag);
the model card (a ``huggingface_hub.ModelCard`` with the generation's metrics and a snippet that runs) and
``samples.png`` are written with every model, are not hashed, and change none of the run's numbers.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from collapse_utils.diffusion import pipeline as cpipe
from collapse_utils.loop import rundir
from collapse_utils.core.config import derive_seed, make_config
from collapse_utils.diffusion.ddpm import batch_generator
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.diffusion.pipeline import CollapsePipeline
from collapse_utils.diffusion.sample import sample_images

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
    """A conditional run started the way a user starts one: from a folder, with a relative ``--out``."""
    cfg = make_config("smoke", conditional=True, **BASE)
    base = tmp_path_factory.mktemp("cond")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        run_self_consuming(cfg, "runs/cond")
    result = rundir.load_run(base / "runs" / "cond")  # the same run, read back with absolute paths
    assert len(result.generations) == cfg.generations
    return cfg, result


@pytest.fixture
def modules_cache(tmp_path, monkeypatch):
    """diffusers copies a custom pipeline file into its modules cache before importing it: keep that in tmp."""
    import diffusers.utils.dynamic_modules_utils as dynamic

    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf_modules"))
    return tmp_path / "hf_modules"


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


def test_diffusion_pipeline_loads_a_conditional_model_as_collapse_pipeline(cond, modules_cache):
    """diffusers' generic loader resolves the folder's ``[file, class]`` entry to the package's class, with the
    run's defaults from model_index.json, and samples exactly the run's guided samples."""
    from diffusers import DiffusionPipeline

    cfg, result = cond
    gen = result.generations[1]
    folder = gen.dir / "model"
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == ["collapse_pipeline", "CollapsePipeline"]
    assert (folder / "collapse_pipeline.py").is_file()
    pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
    assert type(pipe) is CollapsePipeline and pipe.conditional
    assert (pipe.default_num_inference_steps, pipe.default_guidance_scale) == (cfg.num_inference_steps, 2.0)
    pipe.set_progress_bar_config(disable=True)
    bs = cfg.sample_batch_size
    out = pipe(class_labels=gen.sample_labels[:bs], generator=_run_batch(cfg, 2, 0), output_type="uint8").images
    np.testing.assert_array_equal(out, gen.samples[:bs])


def test_conditional_model_without_trust_remote_code_fails_naming_the_file_and_the_flag(cond, modules_cache):
    from diffusers import DDPMPipeline, DiffusionPipeline

    folder = cond[1].generations[0].dir / "model"
    for loader in (DiffusionPipeline, DDPMPipeline):  # DDPMPipeline would load it but could not sample it
        with pytest.raises(ValueError, match=r"collapse_pipeline\.py(.|\n)*trust_remote_code=True"):
            loader.from_pretrained(folder)
    code = (folder / "collapse_pipeline.py").read_text()
    assert "CollapsePipeline.from_pretrained" in code and "trust_remote_code=True" in code
    assert not modules_cache.exists() or not any(modules_cache.rglob("collapse_pipeline.py"))  # nothing was run


def test_pipeline_file_without_the_package_says_what_to_install(cond, monkeypatch):
    code = (cond[1].generations[0].dir / "model" / "collapse_pipeline.py").read_text()
    monkeypatch.setitem(sys.modules, "collapse_utils.diffusion.pipeline", None)  # as if the package were not installed
    with pytest.raises(ImportError, match=r"CollapsePipeline.*model-collapse-repro.*not installed"):
        exec(compile(code, "collapse_pipeline.py", "exec"), {})


def test_collapse_pipeline_never_runs_the_folders_code_file(cond, tmp_path, modules_cache):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(cond[1].generations[0].dir / "model", folder)
    (folder / "collapse_pipeline.py").write_text("raise RuntimeError('the code file was run')\n")
    pipe = CollapsePipeline.from_pretrained(folder)
    assert pipe.conditional and pipe.default_guidance_scale == 2.0


def test_save_pretrained_keeps_the_sampling_defaults(cond, tmp_path):
    pipe = _load(cond[1].generations[0].dir)
    pipe.save_pretrained(tmp_path / "copy")
    again = CollapsePipeline.from_pretrained(tmp_path / "copy")
    assert (again.default_num_inference_steps, again.default_guidance_scale) == (4, 2.0)
    index = json.loads((tmp_path / "copy" / "model_index.json").read_text())
    assert index["_class_name"] == ["collapse_pipeline", "CollapsePipeline"] and index["default_guidance_scale"] == 2.0
    assert (tmp_path / "copy" / "collapse_pipeline.py").read_text() == cpipe.PIPELINE_FILE_TEXT


def test_unconditional_folder_is_exactly_ddpm_pipelines(uncond, tmp_path):
    """An unconditional model's folder is what diffusers' own DDPMPipeline.save_pretrained writes."""
    from diffusers import DDPMPipeline

    pipe = _load(uncond[1].generations[0].dir)
    DDPMPipeline(unet=pipe.unet, scheduler=pipe.scheduler).save_pretrained(tmp_path / "ddpm")
    ours = uncond[1].generations[0].dir / "model"
    theirs = json.loads((tmp_path / "ddpm" / "model_index.json").read_text())
    assert json.loads((ours / "model_index.json").read_text()) == theirs
    assert not (ours / "collapse_pipeline.py").exists()


def test_folder_without_sampling_settings_gets_diffusers_defaults(uncond, tmp_path):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(uncond[1].generations[0].dir / "model", folder)
    (folder / cpipe.SAMPLING_FILE).unlink()
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
                     "CollapsePipeline.from_pretrained", f"gen_{gen.generation:02d}/model", "CC BY-SA 3.0"):
            assert text in card, text
        assert "RUN_DIR" not in card and str(gen.dir.parent.parent) not in card  # a real path, not this machine's
        assert ("guidance w = 2" in card) == cfg.conditional
        assert ("trust_remote_code=True" in card) == cfg.conditional
        settings = json.loads((gen.dir / "model" / "sampling.json").read_text())
        assert settings["num_inference_steps"] == cfg.num_inference_steps and settings["generation"] == gen.generation
        assert settings["guidance_scale"] == (cfg.guidance_scale if cfg.conditional else None)


@pytest.mark.parametrize("which", ["uncond", "cond"])
def test_model_card_metadata_parses_with_huggingface_hub(which, request):
    from huggingface_hub import ModelCard

    cfg, result = request.getfixturevalue(which)
    for gen in result.generations:
        folder = gen.dir / "model"
        card = ModelCard.load(folder / "README.md")
        data = card.data
        assert data.library_name == "diffusers" and data.license == "mit" and data.datasets == ["ylecun/mnist"]
        assert {"diffusers", "ddpm", "model-collapse"} <= set(data.tags)
        assert ("classifier-free-guidance" in data.tags) == cfg.conditional
        assert data.pipeline_tag == (None if cfg.conditional else "unconditional-image-generation")
        # the generation's metrics, from its metrics.json (timings left out), as evaluation results
        recorded = json.loads((gen.dir / "metrics.json").read_text())
        got = {r.metric_type: r.metric_value for r in data.eval_results}
        want = {k: v for k, v in recorded.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert got == pytest.approx(want) and "gs_pixel" in got and not any("timing" in k for k in got)
        assert f"| `gs_pixel` | {recorded['gs_pixel']:.6g} |" in card.text
        # the sample grid it shows lies beside it: a copy of the generation's samples.png
        assert "](samples.png)" in card.text
        assert (folder / "samples.png").read_bytes() == (gen.dir / "samples.png").read_bytes()


def _snippets(card_text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", card_text, flags=re.S)


@pytest.mark.parametrize("which", ["uncond", "cond"])
def test_model_card_snippets_run(which, request, monkeypatch, modules_cache):
    """Every code block of the card runs as written, from the folder the run was started in (the conditional run
    was started with ``runs/cond``; the unconditional one with an absolute path, so the card's paths start at the
    run folder's name), and draws images of the model."""
    cfg, result = request.getfixturevalue(which)
    gen = result.generations[-1]
    run_dir = gen.dir.parent
    start = run_dir.parent.parent if which == "cond" else run_dir.parent
    card = (gen.dir / "model" / "README.md").read_text()
    blocks = _snippets(card)
    assert len(blocks) == 2
    want = "runs/cond/gen_02/model" if which == "cond" else "run/gen_02/model"
    where = "the folder the run was started in" if which == "cond" else "the folder that holds the run directory"
    assert f"The paths below lead from {where} to this folder" in card
    monkeypatch.chdir(start)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    for code in blocks:
        assert f'"{want}"' in code
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)
        images = namespace["images"]
        assert len(images) == (2 * cfg.num_classes if cfg.conditional else 16)
        assert images[0].size == (8, 8)
        assert type(namespace["pipe"]).__name__ == ("CollapsePipeline" if cfg.conditional or "CollapsePipeline" in code
                                                    else "DDPMPipeline")


def test_card_is_written_when_the_generation_finishes_and_a_resumed_run_verifies(uncond, tmp_path):
    """The card is written after metrics.json and before DONE, is not hashed, and a run stopped after generation
    1 and resumed ends with the same cards as an uninterrupted run; the resumed run verifies, and running it
    again writes nothing."""
    cfg, result = uncond
    run = tmp_path / "run"  # the same folder name as the fixture's: same card text

    class Stop(Exception):
        pass

    def stop(gen):
        assert (gen.dir / "model" / "README.md").stat().st_mtime_ns <= (gen.dir / "DONE").stat().st_mtime_ns
        raise Stop

    with pytest.raises(Stop):
        run_self_consuming(cfg, run, on_generation=stop)
    assert (rundir.gen_dir(run, 1) / "model" / "README.md").exists() and not rundir.is_done(run, 2)
    resumed = run_self_consuming(cfg, run)
    for a, b in zip(result.generations, resumed.generations):
        for name in ("README.md", "samples.png", "model_index.json", "sampling.json"):
            assert (a.dir / "model" / name).read_bytes() == (b.dir / "model" / name).read_bytes(), name
    assert len(rundir.load_run(run).generations) == cfg.generations
    for g in (1, 2):
        assert rundir.verify_generation(run, g, cfg.metrics)[1] is None
    stamps = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    run_self_consuming(cfg, run)  # finished: read-only
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == stamps


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


def test_docs_are_not_hashed_and_change_no_artifact(uncond, cond, tmp_path, monkeypatch):
    for _cfg, res in (uncond, cond):
        for gen in res.generations:
            recorded = json.loads((gen.dir / "hashes.json").read_text())
            # documentation is not hashed; the files that define the model (sampling.json too) are
            assert not any(n.endswith(("README.md", "samples.png")) for n in recorded)
            assert {"model/sampling.json", "model/model_index.json", "model/unet/config.json"} <= set(recorded)
    cfg, result = uncond
    monkeypatch.setattr(rundir, "write_model_card", lambda *a, **k: None)
    monkeypatch.setattr(rundir, "ensure_samples_grid", lambda *a, **k: None)
    bare = run_self_consuming(cfg, tmp_path / "bare")
    for a, b in zip(result.generations, bare.generations):
        assert not (b.dir / "samples.png").exists() and not (b.dir / "model" / "README.md").exists()
        assert not (b.dir / "model" / "samples.png").exists()
        for f in sorted(a.dir.rglob("*")):
            if f.suffix in (".npy", ".safetensors") or f.name == "train_log.json":
                assert f.read_bytes() == (b.dir / f.relative_to(a.dir)).read_bytes(), f
            elif f.name == "hashes.json":  # metrics.json's entry varies with its timings
                drop = lambda p: {k: v for k, v in json.loads(p.read_text()).items() if k != "metrics.json"}  # noqa: E731
                assert drop(f) == drop(b.dir / f.relative_to(a.dir)), f


def test_snippet_path_is_the_run_as_named_never_an_absolute_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = "the folder the run was started in"
    assert rundir.model_snippet_path(Path("runs/try"), 3) == ("runs/try/gen_03/model", start)
    assert rundir.model_snippet_path(tmp_path / "runs" / "try", 1) == ("runs/try/gen_01/model", start)
    outside = tmp_path.parent / "elsewhere" / "try"
    assert rundir.model_snippet_path(outside, 1) == ("try/gen_01/model", "the folder that holds the run directory")


def _gen_copy(uncond, tmp_path):
    """A copy of generation 1's folder (its model and the hash record beside it)."""
    import shutil

    gen = tmp_path / "gen_01"
    shutil.copytree(uncond[1].generations[0].dir, gen)
    return gen / "model"


@pytest.mark.parametrize("damage", ["weights", "complete", "sampling"])
def test_a_damaged_run_model_is_refused_naming_it(uncond, tmp_path, damage):
    folder = _gen_copy(uncond, tmp_path)
    CollapsePipeline.from_pretrained(folder)  # whole: loads
    if damage == "weights":  # same size, one byte changed
        path = folder / "unet" / "diffusion_pytorch_model.safetensors"
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
        match = "diffusion_pytorch_model.safetensors"
    elif damage == "complete":
        (folder / "COMPLETE").unlink()
        match = "incomplete"
    else:
        path = folder / cpipe.SAMPLING_FILE
        path.write_text(path.read_text().replace('"num_inference_steps": ', '"num_inference_steps": 1'))
        match = "sampling.json"
    with pytest.raises(ValueError, match=match):
        CollapsePipeline.from_pretrained(folder)


def test_a_malformed_sampling_file_is_named(uncond, tmp_path):
    import shutil

    folder = tmp_path / "model"  # outside a run: no record to check, but the settings file is read
    shutil.copytree(uncond[1].generations[0].dir / "model", folder)
    (folder / cpipe.SAMPLING_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="sampling.json is not valid JSON"):
        CollapsePipeline.from_pretrained(folder)
