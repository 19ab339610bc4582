"""Model families: the denoising networks a self-consuming run can train, behind one interface.

The paper trains one kind of network, a DDPM UNet (PAPER.md §5 "Model"); the loop itself only needs *a* network
that predicts the noise ε of a DDPM. A :class:`ModelFamily` is everything the rest of the package knows about such a
network:

* :meth:`~ModelFamily.build`: a fresh network from explicit settings (size name, resolution, channels, classes);
* :meth:`~ModelFamily.loss`: the DDPM ε objective ‖ε − ε_θ(√ᾱ_t x₀ + √(1−ᾱ_t) ε, t)‖² (Ho et al. 2020, Eq. 14), the
  same for every family (collapse_utils.diffusion.ddpm);
* :meth:`~ModelFamily.sample`: the same 1000-step ancestral sampler (Algorithm 2, diffusers' ``DDPMScheduler``)
  with the same classifier-free guidance options (collapse_utils.diffusion.sample);
* :meth:`~ModelFamily.save` / :meth:`~ModelFamily.load`: a model folder, and :attr:`~ModelFamily.weights` (the file
  a run directory hashes);
* :meth:`~ModelFamily.card`: what a model card says about the network and how to load it.

:data:`FAMILIES` is the registry, keyed by name (``RunConfig.model_family``, ``run --model-family``):

* ``unet`` (:class:`UNetFamily`): diffusers' ``UNet2DModel`` at the authors' sizes (collapse_utils.diffusion.models),
  the paper's network. It alone has the fast CUDA recipe (collapse_utils.diffusion.fast_train / fast_sample).
* ``dit`` (:class:`DiTFamily`): diffusers' ``DiTTransformer2DModel`` (Peebles & Xie 2023) on pixels, trained and
  sampled exactly as the UNet (same objective, scheduler and sampler). Ours, not the paper's: a second family
  to ask whether the collapse depends on the architecture.

What every family's network must do, the *denoiser contract* the trainers and samplers rely on:
``model(x, t, class_labels=None).sample`` is ε̂ shaped like ``x`` (``t`` a scalar or one timestep per image), and
``model.config`` has ``in_channels``, ``sample_size`` and ``num_class_embeds`` (``None`` for an unconditional
model, else the number of classes + 1, the last one the null class ∅ of classifier-free guidance).
``UNet2DModel`` meets it as it is; the DiT is wrapped (:class:`DiTDenoiser`).
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import torch

from .ddpm import SampleSettings, diffusion_loss
from .models import MODEL_CONFIGS, build_scheduler, build_unet, count_parameters, min_resolution

from .pipeline import DEFAULT_FAMILY, FAMILY_FILE, SAMPLING_FILE, CollapsePipeline, read_family_record
from .sample import sample_images
from ..core.devices import resolve_recipe


@dataclass(frozen=True)
class CardText:
    """What a model card (collapse_utils.diffusion.card) says about a family's model: tags, diffusers' pipeline tag,
    what the network is (empty: the paper's, named by its size alone), the line for an unconditional model, and
    runnable code with the package and with diffusers alone, each with a note."""

    tags: tuple[str, ...]
    pipeline_tag: str | None
    network: str
    unconditional: str
    package_code: tuple[str, ...]
    package_note: str
    diffusers_heading: str
    diffusers_code: tuple[str, ...]
    diffusers_note: str


class ModelFamily(ABC):
    """One kind of denoising network (module docstring): its sizes, how to build, train, sample, save and load it."""

    name: str
    sizes: Mapping[str, Mapping[str, Any]]
    weights: Path  # the weights file inside a model folder: what a run directory hashes and checks
    recipes: tuple[str, ...] = ("reference",)  # training/sampling recipes it has (devices.resolve_recipe)

    # ------------------------------------------------------------------ building
    def check(self, size: str, resolution: int) -> None:
        """Raise ValueError naming the fix unless ``size`` is one of this family's and fits ``resolution``."""
        if size not in self.sizes:
            raise ValueError(f"unknown model {size!r} for model family {self.name!r}; choose one of "
                             f"{sorted(self.sizes)}")
        step = self.min_resolution(size)
        if resolution % step:
            raise ValueError(f"resolution {resolution} is not divisible by {step}, which model {size!r} of family "
                             f"{self.name!r} needs")

    @abstractmethod
    def min_resolution(self, size: str) -> int:
        """The image side must be a multiple of this."""

    @abstractmethod
    def build(self, size: str, *, resolution: int, channels: int, num_classes: int | None = None) -> torch.nn.Module:
        """A fresh network (initialised from torch's global generator); ``num_classes`` makes it class-conditional,
        with one extra null class ∅ = ``num_classes`` for classifier-free guidance."""

    def count_parameters(self, size: str, *, resolution: int, channels: int) -> int:
        return count_parameters(self.build(size, resolution=resolution, channels=channels))

    @staticmethod
    def scheduler(num_train_timesteps: int = 1000, beta_schedule: str = "linear"):
        """The DDPM noise schedule every family trains and samples with (models.build_scheduler, PAPER.md §5)."""
        return build_scheduler(num_train_timesteps, beta_schedule)

    # ------------------------------------------------------------------ training and sampling
    @staticmethod
    def loss(model: torch.nn.Module, scheduler: Any, clean: torch.Tensor, generator: torch.Generator,
             class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """The DDPM ε objective for one batch, its draws (ε, then t) from ``generator`` (ddpm.diffusion_loss)."""
        return diffusion_loss(model, scheduler, clean, generator, class_labels)

    def resolve_recipe(self, recipe: str, device: torch.device | str) -> str:
        """The recipe this family runs for ``recipe`` on ``device``: ``auto`` falls back to ``reference`` where the
        family has no fast path; a forced recipe it lacks is refused."""
        resolved = resolve_recipe(recipe, torch.device(device))
        if resolved in self.recipes:
            return resolved
        if recipe == "auto":
            return "reference"
        raise ValueError(f"recipe {recipe!r} exists only for model famil{'y' if len(_with(resolved)) == 1 else 'ies'} "
                         f"{', '.join(_with(resolved))}; model family {self.name!r} has {', '.join(self.recipes)} "
                         "(use --recipe auto or reference)")

    def sample_settings(self, settings: SampleSettings) -> SampleSettings:
        """``settings`` with the recipe this family will run (:meth:`resolve_recipe`)."""
        return replace(settings, recipe=self.resolve_recipe(settings.recipe, settings.device))

    def sample(self, model: torch.nn.Module, scheduler: Any, num_images: int, *, seed: int,
               settings: SampleSettings | None = None, **kwargs: Any) -> np.ndarray | None:
        """collapse_utils.diffusion.sample.sample_images (ancestral DDPM, batch ``b`` from its own seeded generator,
        optional guidance) with this family's recipe; ``kwargs`` as there (labels, parts_dir, rank, …)."""
        settings = replace(settings if settings is not None else SampleSettings(),
                           **{k: kwargs.pop(k) for k in list(kwargs) if k in SampleSettings.__dataclass_fields__})
        return sample_images(model, scheduler, num_images, seed=seed, settings=self.sample_settings(settings), **kwargs)

    # ------------------------------------------------------------------ folders
    @abstractmethod
    def owns(self, model: torch.nn.Module) -> bool:
        """Whether ``model`` is a network of this family (family_of)."""

    @abstractmethod
    def save(self, model: torch.nn.Module, scheduler: Any, folder: Path, sampling: dict[str, Any] | None = None) -> None:
        """Write the model (and its scheduler, and ``sampling`` as ``sampling.json``) into the empty ``folder``."""

    @abstractmethod
    def load(self, folder: str | os.PathLike) -> torch.nn.Module:
        """The model saved in ``folder`` (raises if it is missing or unreadable)."""

    @abstractmethod
    def card(self, model_dir: str, *, conditional: bool, num_classes: int, num_inference_steps: int,
             guidance_scale: float = 1.0) -> CardText:
        """The model card's family-specific text; ``model_dir`` is the folder as its snippets load it, the rest the
        run's sampling settings."""


def _with(recipe: str) -> list[str]:
    return sorted(name for name, fam in FAMILIES.items() if recipe in fam.recipes)


def _write_sampling(folder: Path, sampling: dict[str, Any]) -> None:
    """``sampling.json``, in the format collapse_utils.diffusion.pipeline (its owner) writes and reads."""
    (folder / SAMPLING_FILE).write_text(json.dumps(sampling, indent=2, sort_keys=True) + "\n")


# ====================================================================== the paper's UNet
class UNetFamily(ModelFamily):
    """diffusers' ``UNet2DModel`` at the authors' sizes (models.MODEL_CONFIGS, PAPER.md §5 "Model"), saved as a
    diffusers pipeline folder (``unet/`` + ``scheduler/`` + ``model_index.json``: diffusers' own ``DDPMPipeline`` when
    unconditional, collapse_utils.diffusion.pipeline.CollapsePipeline when conditional). The fast CUDA recipe
    (fast_train, fast_sample) exists for it alone."""

    name = "unet"
    sizes = MappingProxyType(MODEL_CONFIGS)
    weights = Path("unet") / "diffusion_pytorch_model.safetensors"
    recipes = ("reference", "fast")

    def min_resolution(self, size: str) -> int:
        return min_resolution(size)

    def build(self, size: str, *, resolution: int, channels: int, num_classes: int | None = None) -> torch.nn.Module:
        return build_unet(size, resolution=resolution, channels=channels, num_classes=num_classes)

    def owns(self, model: torch.nn.Module) -> bool:
        from diffusers import UNet2DModel

        return isinstance(model, UNet2DModel)

    def save(self, model: torch.nn.Module, scheduler: Any, folder: Path, sampling: dict[str, Any] | None = None) -> None:
        pipe = CollapsePipeline(unet=model, scheduler=scheduler)
        if sampling is not None:
            pipe.set_sampling_settings(sampling)
        pipe.save_pretrained(folder)

    def load(self, folder: str | os.PathLike) -> torch.nn.Module:
        from diffusers import UNet2DModel

        return UNet2DModel.from_pretrained(folder, subfolder="unet")

    def card(self, model_dir: str, *, conditional: bool, num_classes: int, num_inference_steps: int,
             guidance_scale: float = 1.0) -> CardText:
        if conditional:
            call = f"pipe(class_labels=list(range({num_classes})) * 2, output_type=\"pil\").images"
            diffusers_code = (
                "from diffusers import DiffusionPipeline",
                f"pipe = DiffusionPipeline.from_pretrained(\"{model_dir}\", trust_remote_code=True)  # a CollapsePipeline",
                f"images = {call}",
            )
            note = ("diffusers resolves the pipeline class from `model_index.json` (`\"_class_name\": [\"collapse_pipeline\", "
                    "\"CollapsePipeline\"]`): it runs the folder's `collapse_pipeline.py`, which only imports "
                    "`CollapsePipeline` from the installed package, and does so only with `trust_remote_code=True`. "
                    "`CollapsePipeline.from_pretrained` needs no such flag.")
        else:
            call = "pipe(batch_size=16, output_type=\"pil\").images"
            diffusers_code = (
                "from diffusers import DiffusionPipeline",
                f"pipe = DiffusionPipeline.from_pretrained(\"{model_dir}\")  # diffusers' own DDPMPipeline",
                f"images = pipe(batch_size=16, num_inference_steps={num_inference_steps}).images",
            )
            note = ("The folder is a plain diffusers `DDPMPipeline` (same maths as `CollapsePipeline`); "
                    "pass the run's `num_inference_steps`, as diffusers defaults to 1000.")
        package_code = ("from collapse_utils.diffusion.pipeline import CollapsePipeline",
                        f"pipe = CollapsePipeline.from_pretrained(\"{model_dir}\")",
                        f"images = {call}")
        return CardText(
            tags=("diffusers", "ddpm"), pipeline_tag=None if conditional else "unconditional-image-generation",
            network="",
            unconditional="- unconditional (diffusers' `DDPMPipeline.from_pretrained` loads it too, with 1000 steps by "
                          "default)",
            package_code=package_code,
            package_note="Steps and guidance scale default to the run's; pass `num_inference_steps=` / "
                         "`guidance_scale=` to change them, `generator=` for seeded draws, `output_type=\"uint8\"` "
                         "for arrays like the run's `samples.npy`.",
            diffusers_heading="With diffusers' generic loader:",
            diffusers_code=diffusers_code, diffusers_note=note)


# ====================================================================== a DiT on pixels (ours)
def _dit(heads: int, head_dim: int, layers: int, patch: int) -> dict[str, Any]:
    return dict(num_attention_heads=heads, attention_head_dim=head_dim, num_layers=layers, patch_size=patch)


DIT_CONFIGS: dict[str, dict[str, Any]] = {
    # For tests and the smoke preset: one block of width 16 on 2×2 patches (about 10 k parameters at 8×8).
    "tiny": _dit(heads=2, head_dim=8, layers=1, patch=2),
    # The demo's size: 4 blocks of width 64 on 2×2 patches, about 0.39 M parameters at 8×8 (the demo UNet: 0.16 M).
    "demo": _dit(heads=4, head_dim=16, layers=4, patch=2),
    # A paper-scale size of our choosing (the paper only trains UNets): DiT-S/2 of Peebles & Xie (2023), width 384,
    # 12 blocks, 2×2 patches, 35.2 M parameters at 32×32×3 (UNet48: 16.0 M, UNet64: 28.5 M).
    "dit_s2": _dit(heads=6, head_dim=64, layers=12, patch=2),
}


class DiTDenoiser(torch.nn.Module):
    """A ``DiTTransformer2DModel`` (diffusers; Peebles & Xie 2023) on pixels under the denoiser contract (module
    docstring).

    The DiT is class-conditional by design (adaLN-Zero embeds the timestep *and* a class label). An unconditional
    model is therefore a DiT with a single class, and every image is given label 0 (so it learns ε(x, t) alone);
    its table still has the null row diffusers adds, unused. A conditional model with C classes has C + 1 label
    embeddings, the last one the null class ∅ = C, exactly as the conditional UNet. diffusers' own label dropout
    (drawn from torch's global generator inside the model) is switched off: classifier-free guidance training
    drops labels with the run's seeded generator (ddpm.drop_labels), so a resumed run draws what it would have.
    The output has the input's channels (no learned variance): ε only, as the UNet.
    """

    def __init__(self, transformer: Any, conditional: bool) -> None:
        super().__init__()
        self.transformer = transformer
        self.conditional = bool(conditional)
        _no_label_dropout(transformer)
        tc = transformer.config
        n = int(tc.num_embeds_ada_norm) + 1 if self.conditional else None
        self._config = _DenoiserConfig(in_channels=int(tc.in_channels), sample_size=int(tc.sample_size),
                                       num_class_embeds=n)

    @property
    def config(self) -> "_DenoiserConfig":
        return self._config

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor | int, class_labels: torch.Tensor | None = None) -> Any:
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if class_labels is None:
            if self.conditional:  # as the UNet's contract: a conditional model without labels samples with ∅
                class_labels = torch.full((x.shape[0],), self._config.num_class_embeds - 1, device=x.device,
                                          dtype=torch.long)
            else:
                class_labels = torch.zeros(x.shape[0], device=x.device, dtype=torch.long)
        elif not self.conditional:
            raise ValueError("class labels were given to an unconditional DiT (it has one class, label 0, for all)")
        return self.transformer(x, timestep=t, class_labels=class_labels)


@dataclass(frozen=True)
class _DenoiserConfig:
    in_channels: int
    sample_size: int
    num_class_embeds: int | None


def _no_label_dropout(transformer: torch.nn.Module) -> None:
    from diffusers.models.embeddings import LabelEmbedding

    for module in transformer.modules():
        if isinstance(module, LabelEmbedding):
            module.dropout_prob = 0.0


class DiTFamily(ModelFamily):
    """diffusers' ``DiTTransformer2DModel`` on pixels (:class:`DiTDenoiser`), sizes :data:`DIT_CONFIGS` (ours).

    Trained with the same DDPM ε objective and recipe (AdamW, cosine schedule, clipping) and sampled with the same
    ancestral sampler and guidance as the UNet; only the reference recipe exists for it (the fast CUDA path is the
    UNet's). Its model folder: ``transformer/`` (diffusers' ``DiTTransformer2DModel.save_pretrained``),
    ``scheduler/``, ``sampling.json`` and ``family.json`` (family, conditional, classes). diffusers has no pixel-space
    DiT pipeline (its ``DiTPipeline`` needs a VAE), so the folder is loaded with :func:`load_model`, not with
    ``CollapsePipeline``."""

    name = "dit"
    sizes = MappingProxyType(DIT_CONFIGS)
    weights = Path("transformer") / "diffusion_pytorch_model.safetensors"

    def min_resolution(self, size: str) -> int:
        return int(DIT_CONFIGS[size]["patch_size"])

    def build(self, size: str, *, resolution: int, channels: int, num_classes: int | None = None) -> torch.nn.Module:
        from diffusers import DiTTransformer2DModel

        self.check(size, resolution)
        transformer = DiTTransformer2DModel(in_channels=channels, out_channels=channels, sample_size=resolution,
                                            num_embeds_ada_norm=num_classes if num_classes is not None else 1,
                                            **DIT_CONFIGS[size])
        return DiTDenoiser(transformer, conditional=num_classes is not None)

    def owns(self, model: torch.nn.Module) -> bool:
        return isinstance(model, DiTDenoiser)

    def save(self, model: torch.nn.Module, scheduler: Any, folder: Path, sampling: dict[str, Any] | None = None) -> None:
        folder = Path(folder)
        model.transformer.save_pretrained(folder / "transformer")
        scheduler.save_pretrained(folder / "scheduler")
        cfg = model.config
        record = dict(family=self.name, conditional=model.conditional,
                      num_classes=cfg.num_class_embeds - 1 if model.conditional else None,
                      note="unconditional DiTs have one class; every image has label 0")
        (folder / FAMILY_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if sampling is not None:
            _write_sampling(folder, sampling)

    def load(self, folder: str | os.PathLike) -> torch.nn.Module:
        from diffusers import DiTTransformer2DModel

        record = read_family_record(folder)
        transformer = DiTTransformer2DModel.from_pretrained(folder, subfolder="transformer")
        return DiTDenoiser(transformer, conditional=bool(record.get("conditional")))

    def card(self, model_dir: str, *, conditional: bool, num_classes: int, num_inference_steps: int,
             guidance_scale: float = 1.0) -> CardText:
        labels = f", labels=balanced_labels(16, {num_classes}), guidance_scale={guidance_scale:g}" if conditional else ""
        package_code = (
            *(("from collapse_utils.diffusion.ddpm import balanced_labels",) if conditional else ()),
            "from collapse_utils.diffusion.family import load_model, load_scheduler",
            f"model, family = load_model(\"{model_dir}\")",
            f"images = family.sample(model, load_scheduler(\"{model_dir}\"), 16, seed=0{labels}, "
            f"num_inference_steps={num_inference_steps})  # uint8 N×H×W×C",
        )
        diffusers_code = (
            "from diffusers import DDPMScheduler, DiTTransformer2DModel",
            f"dit = DiTTransformer2DModel.from_pretrained(\"{model_dir}\", subfolder=\"transformer\")",
            f"scheduler = DDPMScheduler.from_pretrained(\"{model_dir}\", subfolder=\"scheduler\")",
        )
        note = ("diffusers has no pixel-space DiT pipeline (its `DiTPipeline` samples latents through a VAE), so "
                "diffusers alone gives the network and its scheduler; the package's sampler above is the run's "
                "(ancestral DDPM, Ho et al. 2020" + (", with classifier-free guidance" if conditional else "")
                + "). " + ("Class ∅ = index {n} is the null class." .format(n=num_classes) if conditional else
                           "The model has a single class: pass `class_labels` of zeros when calling the DiT directly."))
        return CardText(
            tags=("diffusers", "ddpm", "dit"), pipeline_tag=None,
            network="a DiT (Peebles & Xie 2023) on pixels, diffusers' `DiTTransformer2DModel`",
            unconditional="- unconditional: a DiT is class-conditional by design, so this one has a single class and "
                          "every image is given label 0",
            package_code=package_code,
            package_note="`family.sample` is the run's sampler (ancestral DDPM; batch b drawn from "
                         "`collapse_utils.diffusion.ddpm.batch_generator(seed, b, device)`); pass `guidance_scale=`, "
                         "`batch_size=`, `device=` to change them. It returns uint8 arrays like the run's "
                         "`samples.npy`.",
            diffusers_heading="With diffusers alone (the network and its scheduler, no sampler):",
            diffusers_code=diffusers_code, diffusers_note=note)


# ====================================================================== the registry
FAMILIES: dict[str, ModelFamily] = {"unet": UNetFamily(), "dit": DiTFamily()}


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``; ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; choose one of {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


_RAISE = object()


def family_of(model: torch.nn.Module, default: Any = _RAISE) -> ModelFamily:
    """The family a built or loaded network belongs to (``default`` if none, when given; else ValueError)."""
    for fam in FAMILIES.values():
        if fam.owns(model):
            return fam
    if default is not _RAISE:
        return default
    raise ValueError(f"{type(model).__name__} belongs to no registered model family ({', '.join(sorted(FAMILIES))})")


def folder_family(folder: str | os.PathLike) -> ModelFamily:
    """The family of the model saved in ``folder``."""
    return get_family(read_family_record(folder)["family"])


def load_model(folder: str | os.PathLike) -> tuple[torch.nn.Module, ModelFamily]:
    """The model saved in ``folder`` and its family, whatever the family (``model.eval()`` mode)."""
    fam = folder_family(folder)
    return fam.load(folder).eval(), fam


def load_scheduler(folder: str | os.PathLike):
    """The DDPM scheduler saved beside a model (``scheduler/``)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_pretrained(folder, subfolder="scheduler")
