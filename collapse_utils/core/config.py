"""Run configuration as code: :class:`RunConfig`, every knob of one self-consuming run, and its run key.

A run of the self-consuming loop is fully described by a :class:`RunConfig`. A preset (collapse_utils.core.presets)
gives the scale; any field can be overridden on top of it (``make_config("demo", n=256)``). Each field carries
its help text, from which the ``run`` command builds its options.

Paper defaults (PAPER.md §5): UNet48, DDPM 1000 steps, linear betas, epsilon prediction; AdamW lr 1e-4,
betas (0.95, 0.999), weight decay 1e-6, eps 1e-8; cosine LR with 500 warm-up steps; gradient clip 1.0;
batch 128; fp16 mixed precision; about 128k optimizer steps per generation (500 epochs at 32,768 images,
and the same step count at every dataset size, see PAPER.md §5 "Epochs by dataset size").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .presets import preset_overrides
from .vocab import PRESETS  # noqa: F401  (re-exported: the config's presets)
from .vocab import (CLASS_SELECTIONS, DEFAULT_METRICS, FEATURE_SPACES, FILTER_SCHEDULES, HELDOUT_METRICS, METRIC_NAMES,
                    MIXED_PRECISION, MODEL_FAMILIES, PARADIGMS, RECIPES, RESIZE_METHODS, TRACKERS)
from . import methods

# Fields that change how a run is executed but not what it computes: they are left out of the run key,
# so a run made on a GPU is found again from a CPU notebook and vice versa.
# ``metrics`` too: missing metrics are computed afterwards from the stored artifacts (run_metrics.ensure_metrics).
# ``sample_batch_size`` is *in* the key: each sampling batch draws from its own seeded stream, so the
# images depend on the batch size.
# ``tracker`` only mirrors what the run writes to a tracker (collapse_utils.loop.tracking).
EXECUTION_FIELDS = ("device", "checkpoint_every", "num_workers", "progress", "metrics", "tracker")

# The run key's first fields: every field that defined what a run computes when run keys were introduced. These
# always enter the key, each at its value (its default included), so the keys of the runs already stored stay
# what they were. A field added to RunConfig since enters the key only while its value differs from its default
# (RunConfig.key_dict), so a new option at its default leaves every key, and every stored run, where it was.
# Frozen: never add a name here (a new field is keyed by that rule), and removing one moves every key.
KEY_FIELDS_V1 = (
    "dataset", "n", "resolution", "channels", "resize_method", "data_root", "paradigm", "generations", "selection",
    "feature_space", "pool_factor", "fresh_fraction", "threshold", "decay", "filter_schedule", "model", "conditional",
    "num_classes", "label_dropout", "guidance_scale", "class_selection", "num_train_timesteps", "beta_schedule",
    "num_inference_steps", "train_steps", "batch_size", "lr", "adam_betas", "weight_decay", "adam_eps",
    "warmup_steps", "grad_clip", "mixed_precision", "recipe", "seed", "sample_batch_size", "extra",
)


def _opt(default: Any, help: str, **cli: Any) -> Any:
    """A RunConfig field with its help text; ``cli`` holds command-line details (``flag``, ``choices``,
    ``metavar``, ``skip``, ``listing``: a function whose text ends the help, e.g. the registered selection
    methods) that the ``run`` command builds its options from (collapse_utils.__main__)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **cli})
    return field(default=default, metadata={"help": help, **cli})


# The DDPM noise schedules diffusers' DDPMScheduler implements (its ``beta_schedule``).
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")


@dataclass
class RunConfig:
    """Everything that defines one self-consuming run (generation 1 trains on real data)."""

    # data
    dataset: str = _opt("mnist", "dataset name (mnist, cifar10, cifar10_catdog, ffhq32, fashion_mnist, digits) or "
                                 "folder:PATH / npy:PATH (README.md 'Data without internet')")
    n: int = _opt(12000, "images per training set (the paper's dataset size)")
    resolution: int | None = _opt(None, "image side in pixels (default: the dataset's own)")
    channels: int | None = _opt(None, "1 (grayscale) or 3 (RGB) (default: the dataset's own)")
    resize_method: str = _opt("bilinear", "resizing filter: bilinear (the authors' torchvision Resize) or area "
                                          "(for downsampled demos)", choices=RESIZE_METHODS)
    data_root: str | None = _opt(None, "folder with downloaded datasets (FFHQ thumbnails, torchvision caches)")

    # loop
    paradigm: str = _opt("replace", "how each later generation's training set is built from the real data and "
                                    "earlier samples (README.md 'One run from the command line', docs/PAPER.md §4.4)",
                         choices=PARADIGMS)
    generations: int = _opt(8, "number of generations (train-sample rounds); generation 1 trains on real data")
    selection: str = _opt("none", "how n images are picked from the candidate pool: a registered method or your own "
                                  "function as module:function (collapse_utils.core.methods); registered:",
                          listing=methods.describe_methods, metavar="METHOD")
    feature_space: str = _opt("pixel", "space in which selection compares images", choices=FEATURE_SPACES)
    pool_factor: int | None = _opt(None, "samples per model = pool_factor x n (default: 2 with selection under "
                                         "replace, as the authors; else 1)")
    fresh_fraction: float = _opt(0.0, "paradigm fresh: fraction in [0, 1] of each later training set that is new real data")
    threshold: float | None = _opt(None, "Threshold Decay Filter: starting distance, in the feature space's units "
                                         "(pixel: L2 on 0-255 values; default: the authors' value for the feature "
                                         "space and paradigm)")
    decay: float | None = _opt(None, "Threshold Decay Filter: factor in (0, 1) that the threshold is multiplied "
                                     "by each time it is lowered (default: the authors')")
    filter_schedule: str = _opt("every_pass", "Threshold Decay Filter: lower the threshold after every pass (the "
                                              "authors' code) or when_stalled (the paper's pseudo-code)",
                                choices=FILTER_SCHEDULES)
    selection_params: dict[str, Any] = _opt({}, "parameters of a plug-in selection method, as a JSON object (the "
                                                "built-ins' are the fields above; threshold also takes "
                                                "threshold_quantile, ours: tau_0 at that quantile of the pool's "
                                                "1-NN distances)", flag="--selection-params")
    metrics: tuple[str, ...] = _opt(DEFAULT_METRICS, "comma-separated metrics measured every generation, any "
                                                     f"of {', '.join(METRIC_NAMES)}", flag="--metrics")

    # model
    model: str = _opt("unet48", "network size within the model family: unet32/48/64/128 (the authors' UNets), demo "
                                "or tiny (small CPU UNets); for the dit family tiny, demo or dit_s2")
    # The kind of denoising network (collapse_utils.diffusion.family): "unet", the paper's DDPM UNet (PAPER.md §5),
    # or "dit", diffusers' DiT on pixels, ours, trained and sampled with the same DDPM objective and sampler. Added
    # after KEY_FIELDS_V1: at its default it stays out of the run key, so every UNet run keeps its key.
    model_family: str = _opt("unet", "model family: unet (the paper's DDPM UNet) or dit (a DiT on pixels, ours; "
                                     "its sizes: tiny, demo, dit_s2)", choices=MODEL_FAMILIES)
    # Class-conditional runs (F11, PAPER.md §5 "MNIST CFG experiment"; the authors' code for it is not released):
    # * conditional: the UNet gets a class embedding with num_classes + 1 entries, index num_classes being the
    #   null class ∅ (models.build_unet); each generation samples balanced labels 0..C-1 and trains the next one
    #   on images *with* their labels (real images keep their dataset labels).
    # * label_dropout: p_uncond of Ho & Salimans (2022): each training label is replaced by ∅ with this
    #   probability, so one network learns eps(x, c) and eps(x, ∅). 0.1 is Ho & Salimans' choice (they found
    #   0.1–0.2 best); the paper does not state its value.
    # * guidance_scale w: eps = eps(x, ∅) + w (eps(x, c) - eps(x, ∅)); w = 0 unconditional, w = 1 conditional
    #   without guidance, the paper's "scale 2" is w = 2 (collapse_utils.diffusion.ddpm explains the convention).
    # * class_selection: "per_class" (default) runs the selection method inside each class and takes n/C
    #   images of every class, so the training set stays class-balanced like the real one and selection
    #   restores diversity *within* each digit, which is what guidance destroys; "global" selects over the
    #   whole pool ignoring labels, where a diversity criterion can shift the class mix (e.g. towards digits
    #   whose images lie far apart in pixel space) and so change what guidance is asked to produce.
    conditional: bool = _opt(False, "class-conditional model with classifier-free guidance")
    num_classes: int = _opt(10, "classes of a conditional run (the null class is one more embedding)")
    label_dropout: float = _opt(0.1, "fraction in [0, 1) of training labels replaced by the null class")
    guidance_scale: float = _opt(2.0, "classifier-free guidance scale w (unitless): eps_u + w (eps_c - eps_u)")
    class_selection: str = _opt("per_class", "conditional runs: select within each class (default, keeps class "
                                             "balance) or over the pool", choices=CLASS_SELECTIONS)

    # diffusion
    num_train_timesteps: int = _opt(1000, "diffusion timesteps T of the DDPM noise schedule")
    beta_schedule: str = _opt("linear", "DDPM noise schedule (diffusers beta_schedule)", choices=BETA_SCHEDULES)
    num_inference_steps: int = _opt(1000, "DDPM denoising steps per sample, out of the T timesteps (the paper: all 1000)", flag="--sample-steps")

    # optimisation
    train_steps: int = _opt(128_256, "optimizer steps per generation (the authors' 501 epochs x 256, "
                                               "docs/PAPER.md §5)")
    batch_size: int = _opt(128, "training batch size in images (summed over all processes)")
    lr: float = _opt(1e-4, "AdamW learning rate (peak of the cosine schedule)")
    adam_betas: tuple[float, float] = _opt((0.95, 0.999), "AdamW betas, two comma-separated numbers")
    weight_decay: float = _opt(1e-6, "AdamW weight decay")
    adam_eps: float = _opt(1e-8, "AdamW epsilon")
    warmup_steps: int = _opt(500, "optimizer steps of linear LR warm-up before the cosine decay")
    grad_clip: float = _opt(1.0, "maximum gradient L2 norm (0: no clipping)")
    mixed_precision: str = _opt("fp16", "training precision (the reference recipe autocasts on a GPU only)",
                                choices=MIXED_PRECISION)
    recipe: str = _opt("auto", "auto: the fast path on CUDA, the reference recipe elsewhere; reference: the "
                               "authors' recipe", skip=True)  # the CLI's --reference-recipe

    # seed (in the run key) and execution (left out of the key, see EXECUTION_FIELDS)
    seed: int = _opt(0, "the run's seed (an integer >= 0); every random choice derives from it")
    device: str | None = _opt(None, "torch device (default: CUDA when available, else CPU)")
    sample_batch_size: int = _opt(1024, "images per sampling batch (part of the run key: each batch has its own "
                                        "noise stream)")
    checkpoint_every: int = _opt(2000, "optimizer steps between training checkpoints (a kill loses at most this many)")
    num_workers: int = _opt(0, "data-loader worker processes of the reference recipe")
    progress: bool = _opt(True, "progress bars", skip=True)  # the CLI's --no-progress
    tracker: str = _opt("auto", "where each generation's loss curve and metrics are also logged: auto (TensorBoard "
                                "in RUN_DIR/tb/ when installed), tensorboard, wandb or none", choices=TRACKERS)

    extra: dict[str, Any] = _opt({}, "free-form annotations (the preset's name); part of the run key", skip=True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # numpy scalars (e.g. from an array of sizes) as the Python numbers they are
            value = getattr(self, f.name)
            if isinstance(value, (np.integer, np.floating, np.bool_)):
                setattr(self, f.name, value.item())
        if isinstance(self.metrics, (list, tuple)):
            self.metrics = tuple(self.metrics)
        if self.selection_params is None:  # None and {}: no parameters, one key
            self.selection_params = {}
        if isinstance(self.adam_betas, (list, tuple)):
            self.adam_betas = tuple(self.adam_betas)  # type: ignore[assignment]
        self.validate()

    def type_errors(self) -> list[str]:
        """Fields whose value has the wrong type: ints must be ints (not floats, bools or NaN), floats numbers,
        strings strings; each message names the field."""
        errors = []
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), str(f.type)
            optional = kind.endswith("| None")
            kind = kind.replace(" | None", "")
            if value is None and optional:
                continue
            shown = f"{value!r} ({type(value).__name__})"
            if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                errors.append(f"{f.name} must be an integer, got {shown}")
            elif kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
                errors.append(f"{f.name} must be a number, got {shown}")  # ranges (finite, …) are checked below
            elif kind == "str" and not isinstance(value, str):
                errors.append(f"{f.name} must be a string, got {shown}")
            elif kind == "bool" and not isinstance(value, bool):
                errors.append(f"{f.name} must be True or False, got {shown}")
            elif kind.startswith("tuple[str") and not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                errors.append(f"{f.name} must be a list of names, got {shown}")
            elif kind.startswith("tuple[float") and not (isinstance(value, tuple) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                errors.append(f"{f.name} must be a list of numbers, got {shown}")
            elif kind.startswith("dict") and not isinstance(value, dict):
                errors.append(f"{f.name} must be a mapping, got {shown}")
        return errors

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Refuse impossible settings before any long work starts (README "Reliability"): wrong types first
        (each naming its field), then values out of range."""
        errors = self.type_errors()
        if errors:
            raise ValueError("invalid run configuration:\n  - " + "\n  - ".join(errors))
        for f in dataclasses.fields(self):  # every option with a fixed set of values, named
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            if choices and value is not None and value not in choices:
                errors.append(f"{f.name} {value!r} is unknown; choose one of {', '.join(map(str, choices))}")
        if self.device is not None:
            import torch

            try:
                torch.device(self.device)
            except (RuntimeError, ValueError, TypeError) as exc:
                errors.append(f"device {self.device!r} is not a torch device (--device): {exc}")
        if errors:
            raise ValueError("invalid run configuration:\n  - " + "\n  - ".join(errors))
        if self.paradigm not in PARADIGMS:
            errors.append(f"paradigm {self.paradigm!r} is unknown; choose one of {PARADIGMS}")
        if self.n <= 0:
            errors.append(f"n must be positive, got {self.n}")
        if self.generations <= 0:
            errors.append(f"generations must be positive, got {self.generations}")
        if self.pool_factor is not None and self.pool_factor < 1:
            errors.append(f"pool_factor must be >= 1, got {self.pool_factor}")
        if not 0.0 <= self.fresh_fraction <= 1.0:
            errors.append(f"fresh_fraction must lie in [0, 1], got {self.fresh_fraction}")
        if self.paradigm == "replace_2n" and self.selection != "none":
            errors.append("paradigm 'replace_2n' is the unselected 2N ablation; use 'replace' with selection instead")
        if self.paradigm == "fresh" and self.fresh_fraction <= 0.0:
            errors.append("paradigm 'fresh' needs fresh_fraction > 0")
        if self.threshold is not None and not self.threshold > 0:
            errors.append(f"threshold must be > 0, got {self.threshold}")
        if self.decay is not None and not 0.0 < self.decay < 1.0:
            errors.append(f"decay must lie in (0, 1), got {self.decay}")
        if self.filter_schedule not in FILTER_SCHEDULES:
            errors.append(f"filter_schedule must be 'every_pass' or 'when_stalled', got {self.filter_schedule!r}")
        errors.extend(self._selection_errors())
        if self.feature_space not in FEATURE_SPACES:
            errors.append(f"feature_space {self.feature_space!r} is unknown; choose pixel, dinov2 or inception")
        unknown = [m for m in self.metrics if m not in METRIC_NAMES]
        if unknown:
            errors.append(f"unknown metric(s) {unknown}; valid: {', '.join(METRIC_NAMES)}")
        after = [m for m in self.metrics if m in HELDOUT_METRICS]
        if after:
            errors.append(f"metric(s) {after} are measured against held-out images after the run, not by the loop: "
                          "leave them out of metrics (figures and collapse_utils.loop.run_metrics.ensure_figure_metrics "
                          "compute them from the stored run)")
        if self.mixed_precision not in MIXED_PRECISION:
            errors.append(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.tracker not in TRACKERS:
            errors.append(f"tracker must be one of {TRACKERS}, got {self.tracker!r}")
        if self.recipe not in RECIPES:
            errors.append(f"recipe must be one of {RECIPES}, got {self.recipe!r}")
        if self.model_family not in MODEL_FAMILIES:
            errors.append(f"model_family {self.model_family!r} is unknown; choose one of {', '.join(MODEL_FAMILIES)}")
        for name in ("train_steps", "batch_size", "num_train_timesteps", "num_inference_steps", "sample_batch_size"):
            if getattr(self, name) <= 0:
                errors.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_inference_steps > self.num_train_timesteps:
            errors.append("num_inference_steps cannot exceed num_train_timesteps")
        if not 0.0 <= self.label_dropout < 1.0:
            errors.append(f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        if not (math.isfinite(self.guidance_scale) and self.guidance_scale >= 0):
            errors.append(f"guidance_scale must be a finite number >= 0, got {self.guidance_scale}")
        if self.conditional and self.num_classes < 2:
            errors.append(f"a conditional run needs num_classes >= 2, got {self.num_classes}")
        if self.class_selection not in CLASS_SELECTIONS:
            errors.append(f"class_selection must be 'per_class' or 'global', got {self.class_selection!r}")
        if self.checkpoint_every <= 0:
            errors.append(f"checkpoint_every must be positive, got {self.checkpoint_every}")
        def finite(x: Any) -> bool:
            try:
                return math.isfinite(x)
            except TypeError:
                return False

        if not (finite(self.lr) and self.lr > 0):
            errors.append(f"lr must be a finite number > 0, got {self.lr}")
        if self.threshold is not None and not finite(self.threshold):
            errors.append(f"threshold must be finite, got {self.threshold}")
        for name in ("weight_decay", "grad_clip"):
            if not (finite(getattr(self, name)) and getattr(self, name) >= 0):
                errors.append(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not (finite(self.adam_eps) and self.adam_eps > 0):
            errors.append(f"adam_eps must be a finite number > 0, got {self.adam_eps}")
        if len(self.adam_betas) != 2 or not all(finite(b) and 0.0 <= b < 1.0 for b in self.adam_betas):
            errors.append(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        if self.seed < 0:
            errors.append(f"seed must be a non-negative integer, got {self.seed}")
        if self.num_workers < 0:
            errors.append(f"num_workers must be >= 0, got {self.num_workers}")
        if self.resolution is not None and self.resolution <= 0:
            errors.append(f"resolution must be positive, got {self.resolution}")
        if self.channels is not None and self.channels not in (1, 3):
            errors.append(f"channels must be 1 or 3, got {self.channels}")
        if self.warmup_steps < 0:
            errors.append(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if errors:
            raise ValueError("invalid run configuration:\n  - " + "\n  - ".join(errors))

    def _selection_errors(self) -> list[str]:
        """The selection method exists (a registered name, or a ``module:function`` that imports) and its
        parameters are its own. Whether it supports the feature space is the preflight's
        (:func:`collapse_utils.core.methods.check_selection`), before anything is trained or written."""
        try:
            method = methods.get_method(self.selection)
        except ValueError as exc:
            return [str(exc)]
        if method.builtin:  # a built-in's parameters are RunConfig fields, but for those added since (no field)
            extra = {p.name for p in method.params if not p.field and not p.runtime}
            wrong = sorted(set(self.selection_params) - extra)
            if wrong:
                return [f"selection {self.selection!r} is built in and takes no selection_params {wrong} (its "
                        "parameters are RunConfig fields" + (f"; selection_params: {sorted(extra)}" if extra else "")
                        + ")"]
        unknown = sorted(set(self.selection_params) - {p.name for p in method.params if not p.runtime})
        if unknown:
            return [f"selection {self.selection!r} takes no parameter(s) {unknown}; its parameters: "
                    f"{sorted(p.name for p in method.params if not p.runtime)}"]
        return []

    # ------------------------------------------------------------------ derived values
    @property
    def samples_per_generation(self) -> int:
        """How many images each model samples (PAPER.md §4.4: n, 2n for replace_2n, pool_factor·n with selection)."""
        if self.paradigm == "replace_2n":
            return 2 * self.n
        return self.effective_pool_factor * self.n

    @property
    def preset(self) -> str:
        """The preset the config was made from (recorded in ``extra`` by :func:`make_config`, so it is part of the
        run key), or ``"custom"``."""
        return self.extra.get("preset", "custom")

    @property
    def effective_pool_factor(self) -> int:
        if self.pool_factor is not None:
            return self.pool_factor
        if self.selection != "none" and self.paradigm in ("replace", "fresh"):
            return 2  # the authors' default: select n from the previous model's 2n samples
        return 1

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["metrics"] = list(self.metrics)
        d["adam_betas"] = list(self.adam_betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys: {unknown}")
        return cls(**d)

    def key_dict(self) -> dict[str, Any]:
        """The fields that define what the run computes, as given: execution fields (:data:`EXECUTION_FIELDS`)
        removed, and a field that is not one of :data:`KEY_FIELDS_V1` (added since) left out while it equals its
        default, so a configuration recorded before that field existed compares equal to one made now."""
        d = self.to_dict()
        for f in dataclasses.fields(self):
            if f.name in EXECUTION_FIELDS or (f.name not in KEY_FIELDS_V1 and _at_default(f, getattr(self, f.name))):
                d.pop(f.name, None)
        return d

    def implied_values(self) -> dict[str, Any]:
        """The values that a field left at ``None`` stands for, where that depends on other fields: the pool
        factor (2 for a selection under replace or fresh, else 1) and, for the Threshold Decay Filter, the
        starting threshold and the decay factor of the feature space and pool kind
        (selection.default_filter_params: pixel 2000 and 0.95; DINOv2 60 and Inception 10 with 0.95 under
        replace, 0.80 under accumulate): the fields of the method's parameters with defaults per feature space
        (collapse_utils.core.methods). A space without defaults (lenet for the filter) implies none."""
        implied: dict[str, Any] = {}
        if self.paradigm != "replace_2n":  # replace_2n samples 2n whatever the pool factor
            implied["pool_factor"] = 2 if self.selection != "none" and self.paradigm in ("replace", "fresh") else 1
        kind = "accumulate" if self.paradigm in ("accumulate", "accumulate_subsample") else "replace"
        try:
            implied.update(methods.get_method(self.selection).implied_fields(self.feature_space, kind))
        except ValueError:
            pass
        return implied

    def canonical_key_dict(self) -> dict[str, Any]:
        """:meth:`key_dict` with every value written out that equals what ``None`` implies
        (:meth:`implied_values`) put back to ``None``: one configuration, one spelling, one key."""
        d = self.key_dict()
        for name, value in self.implied_values().items():
            if d.get(name) is not None and d[name] == value:
                d[name] = None
        if not methods.is_builtin(self.selection):  # a plug-in: its code is part of what the run computes
            d["selection_source_sha256"] = methods.get_method(self.selection).source_digest()
        return d

    def run_key(self) -> str:
        """The run store's key: the first 12 hex digits of the sha256 of :meth:`canonical_key_dict` as sorted JSON.

        The scheme, so that stored runs keep their folders as RunConfig grows:

        * the fields of :data:`KEY_FIELDS_V1` always enter the key, defaults included (they are the fields every
          stored key was computed from, so those keys are unchanged);
        * a field added since enters it only while its value differs from its default: adding an option with a
          default changes no key, and giving that default explicitly gives the key of leaving it out;
        * execution fields (:data:`EXECUTION_FIELDS`) never enter it;
        * a plug-in selection method (``selection="module:function"``, collapse_utils.core.methods) adds the sha256
          of its source file (``selection_source_sha256``), so an edited method never reuses a stored run; the
          built-in methods add nothing;
        * a field whose ``None`` stands for a value implied by other fields (:meth:`implied_values`: the pool
          factor, the Threshold Decay Filter's threshold and decay) enters it as ``None`` when given that very
          value, so ``decay=0.95`` on a pixel-space filter is the same run, and key, as the default ``decay=None``.
          This last rule moved the keys of configurations that wrote such a value out (listed in
          tests/data/run_keys.json); :meth:`run_key_aliases` gives their former keys, under which the run store
          still finds their folders.
        """
        return _hash(self.canonical_key_dict())

    def run_key_aliases(self) -> tuple[str, ...]:
        """Former keys of this run: the keys that the first scheme (:meth:`key_dict` hashed as given) gave to
        each spelling of this configuration, with every implied value either ``None`` or written out, other
        than :meth:`run_key` itself. A run folder made under one of them holds this very run."""
        if not methods.is_builtin(self.selection):
            return ()  # plug-in runs were keyed with their source from the start: no former keys
        implied = self.implied_values()
        names = [k for k in implied if getattr(self, k) is None or getattr(self, k) == implied[k]]
        keys: list[str] = []
        for mask in range(2 ** len(names)):
            spelling = {k: (implied[k] if mask >> i & 1 else None) for i, k in enumerate(names)}
            key = _hash(self.replace(**spelling).key_dict())
            if key != self.run_key() and key not in keys:
                keys.append(key)
        return tuple(keys)

    def replace(self, **overrides: Any) -> "RunConfig":
        return dataclasses.replace(self, **overrides)


def _at_default(f: dataclasses.Field, value: Any) -> bool:
    """``value`` equals the field's default (tuples and lists alike, as the key's JSON writes both as lists)."""
    if f.default is not dataclasses.MISSING:
        default = f.default
    elif f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    else:
        return False  # a field without a default is always given, so always keyed
    if isinstance(value, bool) or isinstance(default, bool):  # True == 1 in Python, not here
        return type(value) is type(default) and value == default
    if isinstance(value, (int, float)) and isinstance(default, (int, float)):  # 1 == 1.0
        return value == default
    return _json(value) == _json(default)


def _json(d: Any) -> str:
    return json.dumps(d, sort_keys=True, default=str)


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(_json(d).encode()).hexdigest()[:12]


def derive_seed(seed: int, generation: int, purpose: str) -> int:
    """Independent, reproducible seeds per (run seed, generation, purpose)."""
    code = int.from_bytes(purpose.encode()[:8].ljust(8, b"\0"), "little")
    return int(np.random.SeedSequence([seed, generation, code]).generate_state(1)[0])


def config_fields() -> list[dataclasses.Field]:
    """The RunConfig fields that are options of the ``run`` command (all but those marked ``skip``)."""
    return [f for f in dataclasses.fields(RunConfig) if not f.metadata.get("skip")]


def make_config(preset: str = "smoke", **overrides: Any) -> RunConfig:
    """A :class:`RunConfig` from a preset plus overrides (``None`` overrides are ignored)."""
    values = preset_overrides(preset)
    values.update({k: v for k, v in overrides.items() if v is not None})
    values.setdefault("extra", {})
    values["extra"] = {**values["extra"], "preset": preset}
    return RunConfig.from_dict(values)
