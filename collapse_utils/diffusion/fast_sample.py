"""The fast sampler: ancestral DDPM sampling (Ho et al. 2020, Algorithm 2) as one compiled torch step.

:class:`FastSampler` (used by :func:`collapse_utils.diffusion.sample.sample_images` on CUDA) computes the same ancestral
step as diffusers' ``DDPMScheduler.step`` (epsilon prediction, x₀ clipping, "fixed_small" variance) written as
one torch function together with the UNet call and the classifier-free guidance combination (Ho & Salimans
2022, :func:`~collapse_utils.diffusion.ddpm.guided_epsilon`), with the same per-batch generator draws (x_T, then one
N(0, I) per step with t > 0), bf16 autocast + channels_last on CUDA (devices.fast_precision), and the step
function compiled with ``torch.compile``.

The compile is first tried in a child process (:func:`probe_compile`): a compiler crash that poisons the CUDA
context ("misaligned address" was seen compiling the train step on torch 2.11) then costs a warning and the
eager path, not the run. ``COLLAPSE_FAST_COMPILE=0`` turns the compile off, ``=1`` skips the probe;
``COLLAPSE_FAST_INDUCTOR`` passes Inductor options (a JSON object, e.g. ``{"freezing": true}``) to the compile,
for the variants that ``benchmarks/gpu_throughput.py --sections sweep`` times.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from diffusers import DDPMScheduler, UNet2DModel

from .ddpm import SampleSettings, guided_epsilon
from ..core.devices import OPTIONS, cudnn_benchmark, fast_autocast, fast_precision
from .models import build_scheduler

log = logging.getLogger(__name__)


# ====================================================================== the ancestral step as numbers
@dataclass
class StepCoefficients:
    """One reverse step of ``DDPMScheduler.step`` (epsilon prediction, fixed_small variance) as numbers.

    x₀ = (x − a·ε) / b, clipped to ±clip; x_prev = c0·x₀ + c1·x + std·z with z ~ N(0, I) when ``noisy``.
    """

    t: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    c0: torch.Tensor
    c1: torch.Tensor
    std: torch.Tensor
    noisy: bool


def step_table(scheduler: DDPMScheduler, num_inference_steps: int, device: torch.device) -> list[StepCoefficients]:
    """Per-step coefficients computed as diffusers computes them (float32 scalars), moved to ``device`` once."""
    sched = copy.deepcopy(scheduler)
    sched.set_timesteps(num_inference_steps)
    conf = sched.config
    if conf.prediction_type != "epsilon" or conf.thresholding or conf.variance_type != "fixed_small":
        raise NotImplementedError("the fast sampler implements epsilon prediction with fixed_small variance only")
    table = []
    for t in sched.timesteps:
        prev_t = sched.previous_timestep(t)
        apt = sched.alphas_cumprod[t]
        aptp = sched.alphas_cumprod[prev_t] if prev_t >= 0 else sched.one
        bpt, bptp = 1 - apt, 1 - aptp
        cur_alpha = apt / aptp
        cur_beta = 1 - cur_alpha
        variance = torch.clamp((1 - aptp) / (1 - apt) * cur_beta, min=1e-20)
        vals = dict(t=t, a=bpt ** 0.5, b=apt ** 0.5, c0=(aptp ** 0.5 * cur_beta) / bpt,
                    c1=cur_alpha ** 0.5 * bptp / bpt, std=variance ** 0.5)
        moved = {k: torch.as_tensor(v).to(device) for k, v in vals.items()}
        table.append(StepCoefficients(noisy=bool(t > 0), **moved))
    return table


def _compile_wanted(device: torch.device) -> str:
    mode = OPTIONS.compile
    if device.type != "cuda" or mode == "0":
        return "0"
    return mode


_PROBED: dict[str, bool] = {}


def _raise_recompile_limit(limit: int = 256) -> None:
    """Every sampler (one per generation) re-traces ``denoise`` for its own model; at Dynamo's default limit
    of 8 per code object, later ones would silently run eagerly."""
    conf = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(conf, name) and getattr(conf, name) < limit:
            setattr(conf, name, limit)


class FastSampler:
    """Ancestral DDPM sampling of batches with the reference's draws; UNet call and scheduler step fused.

    ``sampler(n, generator, class_labels)`` returns what :func:`collapse_utils.diffusion.sample.sample_batch` returns for
    the same generator and ``settings`` (batch size, DDPM steps, guidance scale, null class, device): x_T and
    every step's noise come from ``generator`` in the reference's order and shapes, so results agree with it
    up to the arithmetic precision (bf16 autocast on CUDA, fp32 on CPU). Batches smaller than
    ``settings.batch_size`` are padded (rows are independent in the UNet) so one compiled function serves
    every batch. ``compile``, ``precision``, ``channels_last`` and ``inductor`` override devices.OPTIONS.
    """

    @staticmethod
    def drives(model: torch.nn.Module) -> bool:
        """Whether this sampler can run ``model``: a diffusers UNet2DModel (the paper's denoiser)."""
        return isinstance(model, UNet2DModel)

    def __init__(self, model: UNet2DModel, scheduler: DDPMScheduler, settings: SampleSettings, *,
                 shape: tuple[int, int, int], conditional: bool = False, compile: str | None = None,
                 precision: str | None = None, channels_last: bool | None = None,
                 inductor: dict[str, Any] | None = None) -> None:
        self.device = torch.device(settings.device)
        cuda = self.device.type == "cuda"
        # a private copy: the compiled step may bake its weights in (Inductor "freezing")
        self.model = copy.deepcopy(model).to(self.device).eval()
        self.channels_last = cuda and (OPTIONS.channels_last if channels_last is None else channels_last)
        self.inductor = dict(OPTIONS.inductor if inductor is None else inductor)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.precision = precision or fast_precision("bf16", self.device)
        self.shape, self.batch_size = tuple(shape), int(settings.batch_size)
        self.guidance_scale, self.null_class, self.conditional = settings.guidance_scale, settings.null_class, conditional
        conf = scheduler.config
        self.clip = float(conf.clip_sample_range) if conf.clip_sample else None
        self.table = step_table(scheduler, settings.num_inference_steps, self.device)
        self.compile_mode = compile if compile is not None else _compile_wanted(self.device)
        self._fn: Callable[..., torch.Tensor] = self.denoise
        self.mode = "eager"
        if self.compile_mode != "0":
            self._try_compile()

    # -------------------------------------------------------------- the fused step
    def epsilon(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with fast_autocast(self.device, self.precision):
            eps = guided_epsilon(self.model, x, t, labels, self.guidance_scale, self.null_class)
        return eps.float()

    def denoise(self, x: torch.Tensor, t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c0: torch.Tensor,
                c1: torch.Tensor, std: torch.Tensor, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """One reverse step x_t → x_{t−1} (``DDPMScheduler.step`` maths; ``noise`` is zero at t = 0)."""
        eps = self.epsilon(x, t, labels)
        x0 = (x - a * eps) / b
        if self.clip is not None:
            x0 = x0.clamp(-self.clip, self.clip)
        return (c0 * x0 + c1 * x + std * noise).contiguous()

    # -------------------------------------------------------------- compile, guarded
    def _probe_spec(self) -> dict[str, Any]:
        conf = {k: v for k, v in dict(self.model.config).items() if not k.startswith("_")}
        return dict(model_config=conf, shape=list(self.shape), batch_size=self.batch_size,
                    guidance_scale=self.guidance_scale, null_class=self.null_class, conditional=self.conditional,
                    precision=self.precision, device=str(self.device), channels_last=self.channels_last,
                    inductor=self.inductor)

    def _try_compile(self) -> None:
        spec = self._probe_spec()
        if self.compile_mode == "probe":
            key = json.dumps(spec, sort_keys=True, default=str)
            if key not in _PROBED:
                _PROBED[key] = probe_compile(spec)
            if not _PROBED[key]:
                warnings.warn("torch.compile of the sampling step failed in a probe process; sampling eagerly "
                              "(set COLLAPSE_FAST_COMPILE=0 to skip the probe)", RuntimeWarning, stacklevel=3)
                return
        _raise_recompile_limit()
        self._fn = torch.compile(self.denoise, dynamic=False, options=self.inductor or None)
        self.mode = "compiled"

    # -------------------------------------------------------------- a batch
    def __call__(self, num_images: int, generator: torch.Generator, class_labels: torch.Tensor | None = None,
                 *, max_steps: int | None = None) -> torch.Tensor:
        n, bs = int(num_images), self.batch_size
        if not 0 < n <= bs:
            raise ValueError(f"a batch of {n} images does not fit the sampler's batch size {bs}")
        dev = self.device
        x = torch.zeros((bs, *self.shape), dtype=torch.float32, device=dev)
        noise = torch.zeros_like(x)
        x[:n].normal_(generator=generator)  # = torch.randn((n, *shape), generator=generator)
        labels = None
        if class_labels is not None:
            labels = torch.full((bs,), self.null_class if self.null_class is not None else 0, dtype=torch.int64, device=dev)
            labels[:n] = class_labels.to(dev)
        with cudnn_benchmark(dev.type == "cuda"), torch.no_grad():
            for i, c in enumerate(self.table):
                if max_steps is not None and i >= max_steps:
                    break
                if c.noisy:
                    noise[:n].normal_(generator=generator)
                else:
                    noise.zero_()
                x = self._call(x, c, noise, labels)
        return x[:n]

    def _call(self, x: torch.Tensor, c: StepCoefficients, noise: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.mode != "compiled":
            return self._fn(x, c.t, c.a, c.b, c.c0, c.c1, c.std, noise, labels)
        try:
            return self._fn(x, c.t, c.a, c.b, c.c0, c.c1, c.std, noise, labels)
        except Exception as exc:  # a compiler error (not a poisoned context): same maths, eagerly
            warnings.warn(f"compiled sampling step failed ({exc!r}); sampling eagerly", RuntimeWarning, stacklevel=3)
            self._fn, self.mode = self.denoise, "eager"
            return self._fn(x, c.t, c.a, c.b, c.c0, c.c1, c.std, noise, labels)


# ====================================================================== the compile probe
def _package_root() -> Path:
    return Path(__file__).resolve().parents[2]


def probe_compile(spec: dict[str, Any], timeout: float | None = None) -> bool:
    """Compile and run two sampling steps in a child process; True when it exits cleanly.

    A sticky CUDA error (e.g. "misaligned address" from a generated kernel) would make every later CUDA call
    of this process fail, so the first compiled run happens elsewhere. The child also fills the Inductor
    cache, which makes this process's own compile quick.
    """
    if timeout is None:
        timeout = float(os.environ.get("COLLAPSE_FAST_PROBE_TIMEOUT", "1800"))
    root = str(_package_root())
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "collapse_utils.diffusion.fast_sample", "--probe", json.dumps(spec, default=str)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("compile probe timed out after %.0f s", timeout)
        return False
    if proc.returncode != 0:
        log.warning("compile probe failed (exit %s): %s", proc.returncode, proc.stderr[-2000:])
        return False
    return True


def _probe_main(spec: dict[str, Any]) -> None:
    """Child side of :func:`probe_compile`: a UNet of the same configuration, compiled, two steps."""
    device = torch.device(spec["device"])
    torch.manual_seed(0)
    model = UNet2DModel.from_config(spec["model_config"])
    settings = SampleSettings(batch_size=spec["batch_size"], num_inference_steps=1000, device=device,
                              guidance_scale=spec["guidance_scale"], null_class=spec["null_class"])
    sampler = FastSampler(model, build_scheduler(), settings, shape=tuple(spec["shape"]),
                          conditional=spec["conditional"], compile="1", precision=spec["precision"],
                          channels_last=spec.get("channels_last"), inductor=spec.get("inductor"))
    labels = torch.zeros(spec["batch_size"], dtype=torch.int64, device=device) if spec["conditional"] else None
    gen = torch.Generator(device=device).manual_seed(0)
    out = sampler(spec["batch_size"], gen, labels, max_steps=2)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if sampler.mode != "compiled" or not bool(torch.isfinite(out).all()):
        raise SystemExit(3)
    print("probe ok", sampler.mode)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        # through the package module, not __main__: the same code objects as the parent's compile (cache hits)
        from collapse_utils.diffusion.fast_sample import _probe_main as probe_main

        probe_main(json.loads(sys.argv[2]))
    else:
        print("usage: python -m collapse_utils.diffusion.fast_sample --probe SPEC_JSON", file=sys.stderr)
        sys.exit(2)
