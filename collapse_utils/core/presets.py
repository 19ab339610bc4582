"""The three scales, in one place: each preset's run settings and the sizes its experiments sweep.

* ``smoke``: seconds on a CPU, for tests and CI (tiny UNet, 8×8 MNIST, a few steps).
* ``demo``: minutes on a 2-core CPU on the bundled MNIST at 8×8 (benchmarks/demo_findings.md chose it).
* ``paper``: the authors' settings on one GPU (PAPER.md §5).

:func:`preset_overrides` gives the :class:`~collapse_utils.core.config.RunConfig` fields of a preset
(``config.make_config`` applies them); :func:`scale` gives what the paper's experiments sweep at that preset
(``experiments.py`` turns it into run configurations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .vocab import PRESETS


# ---------------------------------------------------------------------- run settings per preset
def _smoke() -> dict[str, Any]:
    """Seconds on a CPU: for tests and CI. Real UNet, real data, tiny everything."""
    return dict(
        dataset="mnist", n=32, resolution=8, resize_method="area", generations=2, model="tiny",
        train_steps=4, batch_size=16, warmup_steps=1, lr=1e-3, num_train_timesteps=1000,
        num_inference_steps=4, mixed_precision="no", sample_batch_size=256, checkpoint_every=1000,
    )


def _demo() -> dict[str, Any]:
    """Minutes on a 2-core CPU on bundled MNIST at 8×8 (see benchmarks/demo_findings.md).

    Not the paper's scale: 8×8 area-downsampled MNIST, a 0.16 M-parameter UNet without attention,
    1,200 steps per generation at lr 1e-3 (the same at every n, as in the paper), AdamW betas (0.9, 0.999) and
    no weight decay, and 50 of the 1000 DDPM steps at sampling time. The whole demo (6 runs × 5 generations) takes about 10 minutes on 2 cores.
    """
    return dict(
        dataset="mnist", n=128, resolution=8, resize_method="area", generations=5, model="demo",
        train_steps=1200, batch_size=64, warmup_steps=50, lr=1e-3, weight_decay=0.0,
        adam_betas=(0.9, 0.999), num_train_timesteps=1000, num_inference_steps=50,
        mixed_precision="no", sample_batch_size=512, checkpoint_every=500,
    )


def _paper() -> dict[str, Any]:
    """The authors' settings (PAPER.md §5) on one GPU: CIFAR-10 32,768, UNet48, 128,256 steps (501 epochs × 256),
    1000-step DDPM. ``mixed_precision="fp16"`` is the authors'; on CUDA the default fast path trains in bf16
    (``recipe="reference"`` keeps fp16 + GradScaler)."""
    return dict(
        dataset="cifar10", n=32768, resolution=32, generations=8, model="unet48",
        train_steps=128_256, batch_size=128, warmup_steps=500, lr=1e-4, weight_decay=1e-6,
        adam_betas=(0.95, 0.999), num_train_timesteps=1000, num_inference_steps=1000,
        mixed_precision="fp16", sample_batch_size=1024, checkpoint_every=2000,
    )


_PRESET_FACTORIES = {"smoke": _smoke, "demo": _demo, "paper": _paper}

# One line per preset, for people choosing one (the ``run`` command's help lists them).
PRESET_SUMMARIES = {
    "smoke": "seconds on a CPU: checks the code path (tiny UNet, 32 MNIST images at 8x8, 4 training steps); "
             "its numbers mean nothing",
    "demo": "minutes on a 2-core CPU: 128 MNIST images at 8x8, a 0.16 M-parameter UNet, 1,200 steps per "
            "generation, 50 DDPM sampling steps",
    "paper": "the authors' settings on one GPU (days): CIFAR-10 32,768 images at 32x32, UNet48, 128,256 steps "
             "per generation, 1000-step DDPM",
}


def preset_overrides(preset: str) -> dict[str, Any]:
    if preset not in _PRESET_FACTORIES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return _PRESET_FACTORIES[preset]()



# ---------------------------------------------------------------------- experiment scales per preset
@dataclass(frozen=True)
class Scale:
    """What an experiment sweeps at one preset; every field can be overridden by a notebook parameter."""

    sweep_dataset: str
    sweep_sizes: tuple[int, ...]
    sweep_generations: int
    selection_datasets: tuple[str, ...]
    selection_n: dict[str, int]
    selection_generations: int
    feature_space: str
    decays: tuple[float, ...] = (0.80, 0.90, 0.95, 0.98)
    guidance_dataset: str = "mnist"
    guidance_n: int = 12000  # F11: MNIST images per generation (the paper's 12,000)
    guidance_generations: int = 8  # F11: generations (the paper reports FID at iteration 8)
    seeds: tuple[int, ...] = (0,)  # one run per seed; figures show the mean and the spread over them
    heldout_samples: int = 1000  # samples and held-out images per generation of the memorization index
    fid_mode: str = "clean"  # the Fréchet distance the FD figures plot (F8, F12, F13, F11's table; vocab.FID_MODES)
    fd_samples: int | None = None  # images per side of a held-out Fréchet distance (fd_lenet); None: n
    # The figures' FID/FD sample cap (their ``fid_samples`` parameter); None: each run's n.
    fid_samples: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


SCALES: dict[str, Scale] = {
    "smoke": Scale(
        sweep_dataset="mnist", sweep_sizes=(16, 32), sweep_generations=2,
        selection_datasets=("mnist",), selection_n={"mnist": 16}, selection_generations=2,
        feature_space="pixel", decays=(0.8, 0.95), guidance_n=16, guidance_generations=2,
        heldout_samples=64, fid_mode="lenet", fd_samples=64,
    ),
    "demo": Scale(
        # Sizes and selection n chosen by experiment (benchmarks/demo_findings.md): n=32 starts in the memorization
        # regime, 128 and 1024 generalize at first and 128 collapses faster; the selection arms reuse vanilla n=128.
        sweep_dataset="mnist", sweep_sizes=(32, 128, 1024), sweep_generations=5,
        selection_datasets=("mnist",), selection_n={"mnist": 128}, selection_generations=5,
        # F11: n and generations as the selection grid, so its unconditional run is shared (8×8 MNIST).
        feature_space="pixel", decays=(0.80, 0.95), guidance_n=128, guidance_generations=5,
        # Statistics (benchmarks/demo_statistics.md): 3 seeds; Fréchet distances in a LeNet's feature space on 2,000
        # held-out samples against 2,000 MNIST test images, where Inception FID on 128 upsampled 8×8 digits is noise.
        seeds=(0, 1, 2), heldout_samples=1000, fid_mode="lenet", fd_samples=2000,
    ),
    "paper": Scale(
        sweep_dataset="cifar10", sweep_sizes=(1024, 2048, 4096, 8192, 16384, 32768), sweep_generations=10,
        selection_datasets=("ffhq32", "cifar10"), selection_n={"ffhq32": 8192, "cifar10": 32768},
        selection_generations=8, feature_space="dinov2", guidance_n=12000, guidance_generations=8,
        seeds=(0,), heldout_samples=1000, fid_mode="clean", fd_samples=5000,
        # The authors' FID.py keeps the first 32,768 generated images (and every real image; ours: the run's n).
        fid_samples=32768, overrides={},
    ),
}

# Per-dataset settings at paper scale (resolution 32 for every set; MNIST is resized 28→32 bilinearly,
# as the authors' Resize(32) would; channels follow the data).
PAPER_DATASET_OVERRIDES: dict[str, dict[str, Any]] = {
    "cifar10": dict(resolution=32),
    "ffhq32": dict(resolution=32),
    "mnist": dict(resolution=32),
}


def scale(preset: str) -> Scale:
    """What the experiments sweep at ``preset``."""
    if preset not in SCALES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(SCALES)}")
    return SCALES[preset]


