"""A diffusers pipeline for the run's models: DDPM ancestral sampling with optional classifier-free guidance.

Each generation's model folder (``RUN/gen_XX/model``, written by collapse_utils.loop.rundir) is a diffusers pipeline
folder: ``unet/``, ``scheduler/``, ``model_index.json`` and, beside them, ``sampling.json`` (the run's sampling
settings) and ``README.md`` (the model card). Load it with :class:`CollapsePipeline`, offline::

    from collapse_utils.diffusion.pipeline import CollapsePipeline
    pipe = CollapsePipeline.from_pretrained("RUN/gen_01/model")
    images = pipe(batch_size=16, class_labels=list(range(10)) + [0] * 6).images   # PIL images

Which loader to use:

* :class:`CollapsePipeline` loads every model of a run, unconditional or class-conditional, and samples with
  the run's step count and guidance scale unless told otherwise. It never runs code from the model folder.
* ``diffusers.DiffusionPipeline.from_pretrained`` (and ``DDPMPipeline.from_pretrained``) loads an
  *unconditional* model as diffusers' own ``DDPMPipeline``, with no extra code: its maths is the same (its
  default is 1000 steps, not the run's).
* ``diffusers.DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` loads a *class-conditional*
  model as this :class:`CollapsePipeline`, with the run's steps and guidance scale as defaults.

How diffusers finds the pipeline class of a folder: ``model_index.json``'s ``_class_name`` is looked up in the
``diffusers`` module when it is a string (the ``["diffusers", "UNet2DModel"]`` entries name the *components'*
libraries; a pipeline's own library cannot be named that way). When it is a list ``[file, class]`` and the
folder holds ``file.py``, diffusers imports that file as a "custom pipeline" and takes ``class`` from it, which
it does only with ``trust_remote_code=True`` (without it, it stops and names the file and the flag). So a
conditional model's folder holds :data:`PIPELINE_FILE`, a few lines that import this class from the installed
package (and say what to install when it is not), and its ``_class_name`` is :data:`CLASS_ENTRY`. The sampling
defaults travel in ``model_index.json`` too (``default_num_inference_steps``, ``default_guidance_scale``: the
pipeline's configuration, which diffusers hands to ``__init__``), so diffusers' generic loader gets the run's
settings. An unconditional model's folder stays exactly what ``DDPMPipeline.save_pretrained`` writes, so
diffusers' own class, needing no code, keeps loading it.

The maths is the package's reference sampler (collapse_utils.diffusion.sample.sample_batch): DDPM ancestral sampling (Ho
et al. 2020, Algorithm 2) with diffusers' ``DDPMScheduler.step``, and classifier-free guidance (Ho & Salimans
2022) ε̂ = ε_θ(x, ∅) + w·(ε_θ(x, c) − ε_θ(x, ∅)) by collapse_utils.diffusion.ddpm.guided_epsilon, ∅ being the model's last
class embedding (index ``num_classes``). With the same generator the images equal those of
:func:`collapse_utils.diffusion.sample.sample_images` bit for bit: a run's batch ``b`` is
``pipe(batch_size=..., class_labels=..., generator=ddpm.batch_generator(seed, b, device), output_type="uint8")``
(docs/PAPER.md §5: the paper samples with all 1000 DDPM steps; its F11 CFG experiment with scale 2).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from diffusers import DDPMScheduler, DiffusionPipeline, ImagePipelineOutput, UNet2DModel
from diffusers.utils.torch_utils import randn_tensor

from .ddpm import guided_epsilon, to_uint8
from .sample import resolve_labels
from ..core.io import CorruptArtifactError, read_hashes, verify_hashes

OUTPUT_TYPES = ("pil", "np", "uint8", "pt")
DDPM_DEFAULT_STEPS = 1000  # diffusers' DDPMPipeline default, used when a folder has no sampling.json
MODEL_INDEX = "model_index.json"
# A conditional model's folder: diffusers imports PIPELINE_FILE and takes CLASS_ENTRY[1] from it (module docstring).
PIPELINE_FILE = "collapse_pipeline.py"
CLASS_ENTRY = ("collapse_pipeline", "CollapsePipeline")
SAMPLING_FILE = "sampling.json"  # a model folder's sampling defaults (steps, guidance scale): written and read here
DEFAULT_FAMILY = "unet"
FAMILY_FILE = "family.json"  # in a model folder of any family but the UNet (a folder without it holds a UNet)
UNCONDITIONAL_CLASS = "DDPMPipeline"  # what an unconditional model's model_index.json names: diffusers' own
SAMPLING_CONFIG = ("default_num_inference_steps", "default_guidance_scale")  # pipeline config in model_index.json
PIPELINE_FILE_TEXT = '''"""The pipeline class of this class-conditional DDPM: CollapsePipeline of model-collapse-repro.

diffusers runs this file when the folder is loaded with
    DiffusionPipeline.from_pretrained(FOLDER, trust_remote_code=True)
and takes CollapsePipeline from it (model_index.json: "_class_name": ["collapse_pipeline", "CollapsePipeline"]).
It only imports the class from the installed package; the package's own loader reads the folder without it:
    from collapse_utils.diffusion.pipeline import CollapsePipeline
    pipe = CollapsePipeline.from_pretrained(FOLDER)
    images = pipe(class_labels=[0, 1, 2, 3]).images
"""

try:
    from collapse_utils.diffusion.pipeline import CollapsePipeline
except ImportError as exc:
    raise ImportError(
        "this model samples with CollapsePipeline (classifier-free guided DDPM) from the package "
        "model-collapse-repro (collapse_utils), which is not installed: install it "
        "(pip install -e . in a clone of the repository), then load the folder with "
        "collapse_utils.diffusion.pipeline.CollapsePipeline.from_pretrained(FOLDER) or "
        "diffusers.DiffusionPipeline.from_pretrained(FOLDER, trust_remote_code=True)"
    ) from exc

__all__ = ["CollapsePipeline"]
'''


def read_sampling_settings(folder: str | os.PathLike) -> dict[str, Any]:
    """The sampling settings saved with a model (``sampling.json``), or ``{}`` for a folder without them."""
    path = Path(folder) / SAMPLING_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}): restore it from the run or delete it for diffusers' "
                         "defaults") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} holds {type(settings).__name__}, not the object of sampling settings")
    return settings


def check_run_model(folder: str | os.PathLike) -> None:
    """Refuse (ValueError naming the file) a model folder of a run that is not whole: the run's generation folder
    records the sha256 of every file of its model (weights, configs, ``sampling.json``) and marks a finished save
    ``COMPLETE``; an incomplete folder, a recorded file missing or changed fails here, before diffusers reads it.
    A folder outside a run (no record beside it, e.g. from ``save_pretrained``) is not checked."""
    folder = Path(folder)
    hashes = read_hashes(folder.parent) or {}
    recorded = sorted(k for k in hashes if k.startswith(f"{folder.name}/"))
    if not recorded:
        return
    if not (folder / "COMPLETE").exists():
        raise ValueError(f"{folder} is an incomplete model folder (no COMPLETE marker): its run did not finish saving "
                         "it; resume the run to redo it")
    try:
        verify_hashes(folder.parent, *recorded)
    except CorruptArtifactError as exc:
        raise ValueError(f"model folder {folder} is damaged: {exc}") from None


class CollapsePipeline(DiffusionPipeline):
    """DDPM ancestral sampling (Ho et al. 2020) of a run's UNet, with classifier-free guidance (Ho & Salimans 2022)
    for class-conditional models; the same maths and draws as collapse_utils.diffusion.sample (module docstring).

    Load with ``CollapsePipeline.from_pretrained(RUN/gen_XX/model)``: it reads the run's sampling steps and
    guidance scale from ``sampling.json`` into :attr:`default_num_inference_steps` and
    :attr:`default_guidance_scale` (1000 steps and w = 1 for a folder without it). For an unconditional model
    ``diffusers.DDPMPipeline`` works too (1000 steps by default); a conditional one loads through diffusers'
    ``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` as this class (module docstring).

    ``default_num_inference_steps`` and ``default_guidance_scale`` are the pipeline's configuration: saved in a
    conditional model's ``model_index.json`` and given back to ``__init__`` by any diffusers loader.
    """

    model_cpu_offload_seq = "unet"

    def __init__(self, unet: UNet2DModel, scheduler: DDPMScheduler,
                 default_num_inference_steps: int = DDPM_DEFAULT_STEPS, default_guidance_scale: float = 1.0) -> None:
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.register_to_config(default_num_inference_steps=int(default_num_inference_steps),
                                default_guidance_scale=float(default_guidance_scale))
        # Plain attributes first; later assignments also update the config (DiffusionPipeline.__setattr__).
        self.default_num_inference_steps: int = int(default_num_inference_steps)
        self.default_guidance_scale: float = float(default_guidance_scale)
        self.sampling_settings: dict[str, Any] = {}

    # ------------------------------------------------------------------ loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> "CollapsePipeline":
        """Load a model folder (local, offline) and its ``sampling.json`` defaults; ``kwargs`` as diffusers'.
        The folder's :data:`PIPELINE_FILE` is not run: the class it would import is this one. A folder of another
        model family than the UNet (collapse_utils.diffusion.family) is refused, naming its loader; a run's model
        folder that is incomplete or fails its recorded hashes is refused (:func:`check_run_model`)."""
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir():
            family = read_family_record(folder)["family"]
            if family != "unet":
                raise ValueError(
                    f"{folder} holds a model of family {family!r}, which CollapsePipeline (a UNet pipeline) does not "
                    "load: use collapse_utils.diffusion.family.load_model(folder), then family.sample(model, "
                    "load_scheduler(folder), n, seed=...)")
            check_run_model(folder)
        pipe = super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        if folder.is_dir():
            pipe.set_sampling_settings(read_sampling_settings(folder))
        return pipe

    def set_sampling_settings(self, settings: dict[str, Any]) -> None:
        """Use ``settings`` (``num_inference_steps``, ``guidance_scale``, as in ``sampling.json``) as the defaults."""
        self.sampling_settings = dict(settings)
        if settings.get("num_inference_steps") is not None:
            self.default_num_inference_steps = int(settings["num_inference_steps"])
        if settings.get("guidance_scale") is not None:
            self.default_guidance_scale = float(settings["guidance_scale"])

    @classmethod
    def load_config(cls, *args: Any, **kwargs: Any) -> Any:
        """diffusers' ``load_config``; a conditional folder's ``[file, class]`` entry that names this class is read
        as this class's name, so ``from_pretrained`` on this class loads it without importing the folder's file
        (which diffusers would do only with ``trust_remote_code=True``)."""
        loaded = super().load_config(*args, **kwargs)
        config = loaded[0] if isinstance(loaded, tuple) else loaded
        entry = config.get("_class_name") if isinstance(config, dict) else None
        if isinstance(entry, (list, tuple)) and list(entry) == list(CLASS_ENTRY):
            config["_class_name"] = CLASS_ENTRY[1]
        return loaded

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """diffusers' save, plus ``sampling.json`` with this pipeline's defaults, in the folder format a diffusers
        user can load: an unconditional model as diffusers' ``DDPMPipeline`` (no code file), a conditional one as
        :data:`CLASS_ENTRY` with :data:`PIPELINE_FILE` (module docstring). Upload the folder afterwards
        (``huggingface_hub.upload_folder``) rather than with ``push_to_hub``, which would send it unfinished."""
        if kwargs.get("push_to_hub"):
            raise ValueError("CollapsePipeline.save_pretrained does not push: save the folder, then upload it with "
                             "huggingface_hub.upload_folder")
        super().save_pretrained(save_directory, *args, **kwargs)
        folder = Path(save_directory)
        index = json.loads((folder / MODEL_INDEX).read_text())
        index.pop("_name_or_path", None)
        if self.conditional:
            index["_class_name"] = list(CLASS_ENTRY)
            (folder / PIPELINE_FILE).write_text(PIPELINE_FILE_TEXT)
        else:  # exactly DDPMPipeline's folder: diffusers' own class samples it with the same maths
            index["_class_name"] = UNCONDITIONAL_CLASS
            for key in SAMPLING_CONFIG:
                index.pop(key, None)
            (folder / PIPELINE_FILE).unlink(missing_ok=True)
        (folder / MODEL_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        settings = {**self.sampling_settings, "num_inference_steps": self.default_num_inference_steps,
                    "guidance_scale": self.default_guidance_scale if self.conditional else None}
        (folder / SAMPLING_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")

    # ------------------------------------------------------------------ what the model is
    @property
    def conditional(self) -> bool:
        """The UNet has a class embedding (num_classes + 1 entries, the last one the null class ∅)."""
        return bool(getattr(self.unet.config, "num_class_embeds", None))

    @property
    def num_classes(self) -> int | None:
        """The model's classes 0 … num_classes − 1 (its null class is ``num_classes``); None if unconditional."""
        return int(self.unet.config.num_class_embeds) - 1 if self.conditional else None

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def __call__(
        self,
        batch_size: int | None = None,
        class_labels: int | Sequence[int] | np.ndarray | torch.Tensor | None = None,
        guidance_scale: float | None = None,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Draw ``batch_size`` images by DDPM ancestral sampling, guided by ``class_labels`` on a conditional model.

        ``class_labels``: one class for all images (an int) or one per image (then ``batch_size`` defaults to
        their number); a label may be the null class ``num_classes``. A conditional model sampled without labels
        samples unconditionally (∅ for every image, as collapse_utils.diffusion.sample does), which equals w = 0.
        ``guidance_scale`` w (ε̂ = ε(x, ∅) + w·(ε(x, c) − ε(x, ∅))) and ``num_inference_steps`` default to the run's
        (:attr:`default_guidance_scale`, :attr:`default_num_inference_steps`). ``generator``: one
        ``torch.Generator``; all draws (the start noise, then each step's noise) come from it, in that order.
        ``output_type``: ``"pil"`` (PIL images), ``"np"`` (float N×H×W×C in [0, 1], as diffusers), ``"uint8"``
        (N×H×W×C uint8, the format of a run's ``samples.npy``) or ``"pt"`` (the model-space tensor in [-1, 1]).
        Returns ``ImagePipelineOutput(images=...)`` or, with ``return_dict=False``, ``(images,)``.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        labels = self._labels_array(class_labels, batch_size)
        if batch_size is None:
            batch_size = 1 if labels is None else len(labels)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if labels is not None and len(labels) != batch_size:
            raise ValueError(f"got {len(labels)} class labels for batch_size {batch_size}")
        if labels is not None and not self.conditional:
            raise ValueError("class_labels were given but the model is unconditional (it has no class embedding); "
                             "sample it without class_labels")
        w = self.default_guidance_scale if guidance_scale is None else float(guidance_scale)
        steps = self.default_num_inference_steps if num_inference_steps is None else int(num_inference_steps)
        labels, w, null = resolve_labels(self.unet, batch_size, labels, w, None)

        device = self._execution_device
        cfg = self.unet.config
        shape = (batch_size, cfg.in_channels, cfg.sample_size, cfg.sample_size)
        y = None if labels is None else torch.from_numpy(labels.astype(np.int64)).to(device)
        # As collapse_utils.diffusion.sample.sample_batch: a fresh copy of the scheduler, the start noise, then the steps.
        sched = copy.deepcopy(self.scheduler)
        sched.set_timesteps(steps, device=device)
        x = randn_tensor(shape, generator=generator, device=device, dtype=self.unet.dtype)
        for t in self.progress_bar(sched.timesteps):
            eps = guided_epsilon(self.unet, x, t, y, w, null)
            x = sched.step(eps, t, x, generator=generator).prev_sample

        if output_type == "pt":
            images: Any = x
        else:
            u8 = to_uint8(x)
            if output_type == "uint8":
                images = u8
            elif output_type == "np":
                images = (x.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
            else:
                images = self.numpy_to_pil(u8.astype(np.float32) / 255.0)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)

    @staticmethod
    def _labels_array(class_labels: Any, batch_size: int | None) -> np.ndarray | None:
        if class_labels is None:
            return None
        if isinstance(class_labels, torch.Tensor):
            class_labels = class_labels.detach().cpu().numpy()
        labels = np.asarray(class_labels)
        if labels.ndim == 0:
            labels = np.full(1 if batch_size is None else batch_size, int(labels))
        if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(f"class_labels must be an int or a 1-d sequence of ints, got {class_labels!r}")
        return labels.astype(np.int64)


def read_family_record(folder: str | os.PathLike) -> dict[str, Any]:
    """A model folder's ``family.json``, or ``{"family": "unet"}`` for a folder without one (UNet folders, among
    them every one written before families existed, keep diffusers' pipeline layout and need no record)."""
    path = Path(folder) / FAMILY_FILE
    if not path.is_file():
        return {"family": DEFAULT_FAMILY}
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or not isinstance(record.get("family"), str):
        raise ValueError(f"{path} is not a model family record")
    return record
