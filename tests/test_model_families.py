"""Model families behind one interface (collapse_utils.diffusion.family): the UNet's numbers are the former code
path's, a DiT run goes through the whole loop (save, reload, resume, held-out samples), and the family option
changes no existing run key."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

from collapse_utils.core import vocab
from collapse_utils.core.config import RunConfig, derive_seed, make_config
from collapse_utils.core.devices import fixed_cpu_threads
from collapse_utils.diffusion.ddpm import SampleSettings
from collapse_utils.diffusion.family import FAMILIES, DiTDenoiser, family_of, get_family, load_model, load_scheduler
from collapse_utils.diffusion.sample import sample_images
from collapse_utils.diffusion.train import train_model
from collapse_utils.diffusion.card import model_card
from collapse_utils.loop import rundir
from collapse_utils.loop.run import run_self_consuming

CPU = torch.device("cpu")
# The smoke preset's fields the DiT runs below use; metrics kept cheap.
DIT = dict(model_family="dit", progress=False, tracker="none", metrics=("gs_pixel",))

# What the code before model families gave (train_model with make_config("smoke"), seed 5, on 32 seeded random
# 8×8 images; then sample_images of 6 images, seed 11, 4 steps, batches of 4, reference sampler), computed with
# that code: its losses exactly and the sha256 of the samples' bytes.
UNET_REFERENCE = {
    "uncond": {"losses": [1.081430196762085, 1.0666143894195557, 1.0627905130386353, 0.9277516603469849],
               "samples": "09f451becf04ab9932eb2e376bc714a8676766e8880d43712c29315e022edeb6"},
    "cond": {"losses": [1.0755524635314941, 1.1477339267730713, 1.0736923217773438, 0.9281182885169983],
             "samples": "8df6c6f917eb56a0e6df012ec585576aec2d2621928a955122d023a2bec2306a"},
}


def _images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (32, 8, 8, 1), dtype=np.uint8), (np.arange(32) % 3).astype(np.int64)


# ---------------------------------------------------------------------- the registry
def test_registry_matches_the_config_vocabulary():
    assert tuple(FAMILIES) == vocab.MODEL_FAMILIES
    assert FAMILIES["unet"].weights == rundir.UNET_WEIGHTS  # the layout of every stored UNet folder
    assert "fast" in FAMILIES["unet"].recipes and "fast" not in FAMILIES["dit"].recipes
    with pytest.raises(ValueError, match="unknown model family 'vit'"):
        get_family("vit")
    with pytest.raises(ValueError, match="unknown model 'unet48' for model family 'dit'"):
        get_family("dit").check("unet48", 32)
    with pytest.raises(ValueError, match="not divisible by 2"):
        get_family("dit").check("tiny", 9)
    import collapse_utils

    assert collapse_utils.FAMILIES is FAMILIES


@pytest.mark.parametrize("which", ["uncond", "cond"])
def test_unet_family_gives_the_former_losses_and_samples(which):
    images, labels = _images()
    cond = which == "cond"
    cfg = make_config("smoke", progress=False, conditional=cond, num_classes=3)
    family = get_family("unet")
    kw = dict(labels=np.array([0, 1, 2, 0, 1, 2]), guidance_scale=2.0, null_class=3) if cond else {}
    with fixed_cpu_threads(CPU):
        res = train_model(images, labels if cond else None, cfg, seed=5, device="cpu")
        assert family_of(res.model) is family
        x = family.sample(res.model, family.scheduler(), 6, seed=11, num_inference_steps=4, batch_size=4,
                          progress=False, device="cpu", recipe="reference", **kw)
    assert res.losses == UNET_REFERENCE[which]["losses"]
    assert hashlib.sha256(x.tobytes()).hexdigest() == UNET_REFERENCE[which]["samples"]


# ---------------------------------------------------------------------- run keys
def test_family_option_changes_no_existing_key():
    for preset in ("smoke", "demo", "paper"):
        cfg = make_config(preset)
        assert "model_family" not in cfg.key_dict()
        assert make_config(preset, model_family="unet").run_key() == cfg.run_key()
        assert make_config(preset, model_family="dit").run_key() != cfg.run_key()
    assert RunConfig(model_family="unet").run_key() == RunConfig().run_key()
    assert make_config("smoke", model_family="dit").key_dict()["model_family"] == "dit"


def test_unknown_family_or_unsupported_recipe_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="model_family 'vit' is unknown"):
        run_self_consuming(make_config("smoke", model_family="vit", progress=False), tmp_path / "vit")
    with pytest.raises(ValueError, match="recipe 'fast' exists only for model family unet"):
        run_self_consuming(make_config("smoke", recipe="fast", **DIT), tmp_path / "fast")
    with pytest.raises(ValueError, match="unknown model 'unet48' for model family 'dit'"):
        run_self_consuming(make_config("smoke", model="unet48", **DIT), tmp_path / "size")
    assert not any(tmp_path.iterdir())  # not even a lock file
    from collapse_utils.__main__ import main

    with pytest.raises(SystemExit):
        main(["run", "--preset", "smoke", "--model-family", "vit", "--out", str(tmp_path / "cli")])
    assert not (tmp_path / "cli").exists()


# ---------------------------------------------------------------------- the DiT
@pytest.mark.parametrize("num_classes", [None, 3])
def test_dit_saves_reloads_and_samples_the_same_images(num_classes, tmp_path):
    images, labels = _images()
    cfg = make_config("smoke", conditional=num_classes is not None, num_classes=3, **DIT)
    with fixed_cpu_threads(CPU):
        res = train_model(images, labels if num_classes else None, cfg, seed=1, device="cpu")
        assert isinstance(res.model, DiTDenoiser) and res.recipe == "reference" and len(res.losses) == 4
        kw = dict(labels=np.array([0, 1, 2, 2]), guidance_scale=2.0) if num_classes else {}
        fam = family_of(res.model)
        before = fam.sample(res.model, fam.scheduler(), 4, seed=3, num_inference_steps=4, progress=False, **kw)
        folder = rundir.model_path(tmp_path)  # as in a generation's folder: the model counts with its training log
        rundir.write_train_log(tmp_path, res.losses, res.mixed_precision, res.recipe, res.steps)
        rundir.save_model(res.model, fam.scheduler(), folder, cfg, 1)
        model, fam2 = load_model(folder)
        after = fam2.sample(model, load_scheduler(folder), 4, seed=3, num_inference_steps=4, progress=False, **kw)
    assert fam2 is fam and model.conditional == (num_classes is not None)
    np.testing.assert_array_equal(before, after)
    assert rundir.load_model(folder, family="dit") is not None and rundir.load_model(folder, family="unet") is None
    from collapse_utils.diffusion.pipeline import CollapsePipeline

    with pytest.raises(ValueError, match="family 'dit'.*load_model"):
        CollapsePipeline.from_pretrained(folder)

    # the model card's snippet (with the package) loads and samples the folder
    card = str(model_card(cfg, 1, {}, folder.as_posix()))
    assert "family `dit`" in card and "DiTTransformer2DModel" in card
    snippet = card.split("```python\n")[1].split("```")[0]
    namespace: dict = {}
    exec(snippet, namespace)
    assert namespace["images"].shape == (16, 8, 8, 1)


def test_dit_has_no_label_dropout_of_its_own():
    """Label dropout is the run's seeded ddpm.drop_labels; diffusers' own (unseeded) would break resumes."""
    torch.manual_seed(0)
    model = get_family("dit").build("tiny", resolution=8, channels=1, num_classes=3).train()
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4]), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(1)
    a = model(x, t, class_labels=y).sample
    torch.manual_seed(2)
    assert torch.equal(a, model(x, t, class_labels=y).sample)
    assert model.config.num_class_embeds == 4  # 3 classes and the null class


def _hashes(gen) -> dict[str, str]:
    """The generation's content record, but metrics.json (it holds wall-clock timings) replaced by its values."""
    record = json.loads((gen / "hashes.json").read_text())
    record.pop("metrics.json", None)
    metrics = json.loads((gen / "metrics.json").read_text())
    metrics.pop("timings", None)
    return {**record, "metrics (no timings)": json.dumps(metrics, sort_keys=True)}


def test_dit_run_end_to_end_reloads_and_resumes_to_the_same_bytes(tmp_path):
    cfg = make_config("smoke", **DIT)
    out = tmp_path / "dit"
    result = run_self_consuming(cfg, out)
    assert len(result.generations) == 2
    run = rundir.load_run(out)
    assert len(run.generations) == 2 and run.config.model_family == "dit"
    folder = rundir.model_path(rundir.gen_dir(out, 2))
    assert (folder / get_family("dit").weights).exists() and not (folder / rundir.UNET_WEIGHTS).exists()
    assert "family `dit`" in (folder / "README.md").read_text()

    # the saved model draws the run's samples again
    model, fam = load_model(folder)
    with fixed_cpu_threads(CPU):
        again = fam.sample(model, load_scheduler(folder), cfg.samples_per_generation,
                           seed=derive_seed(cfg.seed, 2, "sample"), settings=SampleSettings.from_config(cfg, CPU))
    np.testing.assert_array_equal(again, run.generations[1].samples)

    # held-out samples (memorization index) come from the saved DiT too
    from collapse_utils.loop.heldout import heldout_samples

    held = heldout_samples(run, 1, 8)
    assert held.shape == (8, 8, 8, 1) and held.dtype == np.uint8

    # resume after losing the last generation: the same bytes
    before = _hashes(rundir.gen_dir(out, 2))
    shutil.rmtree(rundir.gen_dir(out, 2))
    run_self_consuming(cfg, out)
    assert _hashes(rundir.gen_dir(out, 2)) == before


def test_sample_images_keeps_the_reference_sampler_for_a_dit_whatever_the_recipe():
    torch.manual_seed(0)
    model = get_family("dit").build("tiny", resolution=8, channels=1)
    kw = dict(seed=0, num_inference_steps=3, progress=False, device="cpu")
    np.testing.assert_array_equal(sample_images(model, get_family("dit").scheduler(), 2, recipe="auto", **kw),
                                  sample_images(model, get_family("dit").scheduler(), 2, recipe="reference", **kw))
    assert get_family("dit").resolve_recipe("auto", torch.device("cuda")) == "reference"


class _Stop(Exception):
    pass


def test_dit_training_resumes_exactly_from_its_checkpoint(tmp_path):
    """The reference recipe's checkpoint (accelerate's save_state) holds the DiT too; a killed generation resumes."""
    images, labels = _images()
    cfg = make_config("smoke", conditional=True, num_classes=3, label_dropout=0.3, checkpoint_every=2, **DIT)
    full = train_model(images, labels, cfg, seed=2, device="cpu")

    def stop_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise _Stop

    with pytest.raises(_Stop):
        train_model(images, labels, cfg, seed=2, device="cpu", ckpt_dir=tmp_path / "ckpt", on_step=stop_at_3)
    seen: list[int] = []
    resumed = train_model(images, labels, cfg, seed=2, device="cpu", ckpt_dir=tmp_path / "ckpt",
                          on_step=lambda s, loss: seen.append(s))
    assert seen == [3, 4] and resumed.losses == full.losses
    for k, v in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)


def test_unet_folders_keep_their_layout(tmp_path):
    """A UNet's model folder is what it was before families: a diffusers pipeline folder, no family record."""
    torch.manual_seed(0)
    family = get_family("unet")
    model = family.build("tiny", resolution=8, channels=1)
    rundir.save_model(model, family.scheduler(), rundir.model_path(tmp_path))
    folder = rundir.model_path(tmp_path)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == ["COMPLETE", "model_index.json", "sampling.json", "scheduler/scheduler_config.json",
                     "unet/config.json", "unet/diffusion_pytorch_model.safetensors"]
    assert json.loads((folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"
    # the content record holds every file the model is (weights, configs, sampling settings), not its marker
    assert sorted(json.loads((tmp_path / "hashes.json").read_text())) == [f"model/{n}" for n in names
                                                                          if n != "COMPLETE"]


def test_run_command_selects_the_dit_with_one_option(tmp_path, capsys):
    from collapse_utils.__main__ import main

    out = tmp_path / "dit"
    assert main(["run", "--preset", "smoke", "--model-family", "dit", "--generations", "1", "--metrics", "gs_pixel",
                 "--tracker", "none", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model_family"] == "dit"
    assert (rundir.model_path(rundir.gen_dir(out, 1)) / get_family("dit").weights).exists()


def test_the_fast_sampler_drives_the_unet_only():
    """The sampler needs no family lookup: the fast path says which networks it drives, and a DiT is sampled by the
    reference recipe."""
    from collapse_utils.diffusion.fast_sample import FastSampler

    unet = get_family("unet").build("tiny", resolution=8, channels=1)
    dit = get_family("dit").build("tiny", resolution=8, channels=1)
    assert FastSampler.drives(unet) and not FastSampler.drives(dit)
    assert family_of(unet).recipes == ("reference", "fast") and "fast" not in family_of(dit).recipes
