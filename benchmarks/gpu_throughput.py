#!/usr/bin/env python
"""Throughput and equality checks: the reference recipe against the fast path, on one device.

Prints one table (work, reference, ours, ratio, device) and writes ``results.json`` and ``table.md`` to
``--out``. Sections, in the order they run:

* training img/s at batch 128 (UNet48, 32×32×3, random uint8 data): ``train_reference`` vs ``train_fast``;
* sampling per DDPM step at batch 1024: ``sample_batch`` (fp32, diffusers scheduler) vs ``FastSampler``;
  img/s at 1000 steps is batch / (1000 · step time);
* greedy selection of 32,768 of 65,536 (pixels 3072-d, random 384-d features): a naive per-pick ``cdist``
  loop as the reference (timed on the first picks, extrapolated linearly) vs ``selection.greedy_selection``;
* KL entropy and generalization score on 32,768 pixel images: scikit-learn ``NearestNeighbors`` as the
  reference (timed at a smaller n, extrapolated quadratically) vs ``metrics.knn_entropy`` /
  ``metrics.generalization_score``;
* equality checks: fp32 losses of both recipes from the same seed; the bf16 fast path's loss curve over
  the first 2,000 steps against the reference's (fp16) from the same seed, per window; sampling at fixed
  noise (same generator) with a model trained by the fast path, reference fp32 vs fast bf16.

* ``--sections …,sweep`` (not in the default): sampler variants (batch 1024/2048/4096, Inductor freezing,
  NCHW, coordinate-descent tuning, max-autotune), each compiled and timed in its own child process, with the
  achieved TFLOP/s and a torch.profiler kernel table of the first (``sampling_profile.txt``): what a GPU
  session needs to find the next sampling speed-up.

While the reference's 2,000-step loss curve trains in a second process, this process compiles the sampler
and runs the other checks; every timing is taken while nothing else runs. ``--tiny`` runs everything at toy
sizes (CPU, seconds) so CI can import and run it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402


# ====================================================================== sizes
@dataclass
class Sizes:
    """Problem sizes of every section (the issue's at full size; toy ones with --tiny)."""

    model: str
    resolution: int
    channels: int
    train_n: int
    train_batch: int
    ref_train_steps: int
    ref_train_skip: int
    fast_train_steps: int
    fast_train_skip: int
    sample_batch: int
    ref_sample_steps: int
    fast_sample_steps: int
    pool: int
    pick: int
    naive_picks: int
    feat_dim: int
    metric_n: int
    sklearn_n: int
    loss_steps: int
    loss_window: int
    agree_images: int
    agree_steps: int
    exact_steps: int


FULL = Sizes(model="unet48", resolution=32, channels=3, train_n=32768, train_batch=128, ref_train_steps=60,
             ref_train_skip=10, fast_train_steps=400, fast_train_skip=100, sample_batch=1024, ref_sample_steps=8,
             fast_sample_steps=20, pool=65536, pick=32768, naive_picks=2048, feat_dim=384, metric_n=32768,
             sklearn_n=4096, loss_steps=2000, loss_window=200, agree_images=256, agree_steps=1000, exact_steps=20)
TINY = Sizes(model="tiny", resolution=8, channels=3, train_n=64, train_batch=16, ref_train_steps=4, ref_train_skip=1,
             fast_train_steps=4, fast_train_skip=1, sample_batch=8, ref_sample_steps=2, fast_sample_steps=2, pool=512,
             pick=256, naive_picks=32, feat_dim=32, metric_n=256, sklearn_n=128, loss_steps=12, loss_window=4,
             agree_images=4, agree_steps=5, exact_steps=3)


# ====================================================================== helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores)"


def reset_accelerate() -> None:
    """Let the next reference run pick its own mixed precision (accelerate keeps one per process)."""
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state:
        AcceleratorState._reset_state(reset_partial_state=False)


def free_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def train_config(sz: Sizes, steps: int, mixed_precision: str, **kw: Any):
    from collapse_utils.core.config import make_config

    return make_config("paper", model=sz.model, resolution=sz.resolution, n=sz.train_n, train_steps=steps,
                       batch_size=sz.train_batch, mixed_precision=mixed_precision, checkpoint_every=10**9,
                       progress=False, **kw)


def random_images(n: int, sz: Sizes, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, sz.resolution, sz.resolution, sz.channels), dtype=np.uint8)


def check_images(sz: Sizes) -> tuple[np.ndarray, str]:
    """Real images for the loss-curve and sampling checks: the bundled CIFAR-10 cats and dogs (else random)."""
    if sz.resolution == 32 and sz.channels == 3:
        try:
            from collapse_utils.core.data import load_dataset

            return load_dataset("cifar10_catdog").images, "cifar10_catdog (2,000 real 32×32 images)"
        except Exception as exc:  # the bundled file is another module's; fall back visibly
            print(f"[checks] cifar10_catdog unavailable ({exc}); random images instead", flush=True)
    return random_images(max(sz.train_n, sz.train_batch), sz, seed=1), "random uint8 images"


def steady_rate(stamps: dict[int, float], skip: int, batch: int) -> float:
    """img/s between the first recorded step at or after ``skip`` and the last step."""
    steps = sorted(stamps)
    s0 = next(s for s in steps if s >= skip)
    s1 = steps[-1]
    if s1 <= s0:
        s0 = steps[0]
    return (s1 - s0) * batch / max(stamps[s1] - stamps[s0], 1e-9)


class Results:
    """Rows of the table plus everything measured, saved after every section."""

    def __init__(self, out: Path | None, device: torch.device) -> None:
        self.out, self.device = out, device
        self.rows: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {"device": device_name(device), "torch": torch.__version__}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)

    def row(self, work: str, reference: float | None, ours: float | None, unit: str, higher_is_better: bool,
            note: str = "") -> None:
        ratio = None
        if reference and ours:
            ratio = ours / reference if higher_is_better else reference / ours
        self.rows.append(dict(work=work, reference=reference, ours=ours, unit=unit, ratio=ratio, note=note))
        print(f"[row] {work}: reference {fmt(reference)} / ours {fmt(ours)} {unit}  ratio {fmt(ratio)}  {note}",
              flush=True)
        self.save()

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def save(self) -> None:
        if self.out is None:
            return
        (self.out / "results.json").write_text(json.dumps({"rows": self.rows, **self.data}, indent=2, default=str))
        (self.out / "table.md").write_text(self.markdown())

    def markdown(self) -> str:
        dev = self.data["device"]
        lines = ["| work | reference | ours | ratio | device |", "|---|---|---|---|---|"]
        for r in self.rows:
            ratio = f"{r['ratio']:.2f}×" if r["ratio"] else "–"
            note = f" ({r['note']})" if r["note"] else ""
            lines.append(f"| {r['work']}{note} | {fmt(r['reference'])} {r['unit']} | {fmt(r['ours'])} {r['unit']} | "
                         f"{ratio} | {dev} |")
        return "\n".join(lines) + "\n"


def fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def section(name: str, fn: Callable[[], None], res: Results) -> None:
    """Run one section; an error is recorded and the next section still runs."""
    t0 = time.perf_counter()
    print(f"\n=== {name}", flush=True)
    try:
        fn()
    except Exception as exc:
        traceback.print_exc()
        res.put(f"error_{name}", repr(exc))
    print(f"=== {name}: {time.perf_counter() - t0:.1f} s", flush=True)


# ====================================================================== training throughput
def timed_train(train_fn: Callable, images: np.ndarray, cfg, device: torch.device, skip: int) -> tuple[float, Any]:
    from collapse_utils.diffusion.ddpm import TrainJob

    stamps: dict[int, float] = {}

    def on_step(step: int, loss: float) -> None:
        stamps.setdefault(step, time.perf_counter())

    result = train_fn(TrainJob(images=images, labels=None, cfg=cfg, seed=0, device=device, on_step=on_step))
    return steady_rate(stamps, skip, cfg.batch_size), result


def bench_training(sz: Sizes, device: torch.device, res: Results) -> None:
    from collapse_utils.core.devices import OPTIONS
    from collapse_utils.diffusion.fast_train import train_fast
    from collapse_utils.diffusion.train import train_reference

    images = random_images(sz.train_n, sz)
    reset_accelerate()
    ref_rate, ref = timed_train(train_reference, images, train_config(sz, sz.ref_train_steps, "fp16"), device,
                                sz.ref_train_skip)
    del ref
    free_memory(device)
    fast_rate, out = timed_train(train_fast, images, train_config(sz, sz.fast_train_steps, "fp16"), device,
                                 sz.fast_train_skip)
    res.put("train_fast_info", out.info | {"mixed_precision": out.mixed_precision})
    del out
    free_memory(device)
    label = f"training img/s, batch {sz.train_batch} ({sz.model}, {sz.resolution}×{sz.resolution}×{sz.channels})"
    info = res.data["train_fast_info"]
    ref_precision = "fp16" if device.type == "cuda" else "fp32"
    ours_precision = "fp32" if info["mixed_precision"] == "no" else info["mixed_precision"]
    res.row(label, ref_rate, fast_rate, "img/s", True,
            f"reference {ref_precision} eager; ours {ours_precision} {info['mode']}")
    if device.type == "cuda":  # one variant: the graph with channels_last
        OPTIONS.train_channels_last = True
        try:
            rate, out = timed_train(train_fast, images, train_config(sz, sz.fast_train_steps, "fp16"), device,
                                    sz.fast_train_skip)
            res.row(label, ref_rate, rate, "img/s", True, f"ours with channels_last, {out.info['mode']}")
        finally:
            OPTIONS.train_channels_last = False
        free_memory(device)


# ====================================================================== sampling throughput
def sampling_model(sz: Sizes, device: torch.device):
    from collapse_utils.diffusion.models import build_scheduler, build_unet

    torch.manual_seed(0)
    return build_unet(sz.model, resolution=sz.resolution, channels=sz.channels).to(device).eval(), build_scheduler()


def ref_step_ms(model, sched, sz: Sizes, device: torch.device) -> float:
    from collapse_utils.diffusion.sample import sample_batch

    shape = (sz.channels, sz.resolution, sz.resolution)
    gen = torch.Generator(device=device).manual_seed(0)
    sample_batch(model, sched, sz.sample_batch, generator=gen, shape=shape, num_inference_steps=2)
    sync(device)
    t0 = time.perf_counter()
    sample_batch(model, sched, sz.sample_batch, generator=gen, shape=shape, num_inference_steps=sz.ref_sample_steps)
    sync(device)
    return (time.perf_counter() - t0) / sz.ref_sample_steps * 1e3


def fast_step_ms(sampler, sz: Sizes, device: torch.device) -> float:
    """Milliseconds per DDPM step of a full batch (after three warm-up steps)."""
    gen = torch.Generator(device=device).manual_seed(0)
    sampler(sampler.batch_size, gen, max_steps=3)
    sync(device)
    t0 = time.perf_counter()
    sampler(sampler.batch_size, gen, max_steps=sz.fast_sample_steps)
    sync(device)
    return (time.perf_counter() - t0) / sz.fast_sample_steps * 1e3


def build_fast_sampler(model, sched, sz: Sizes, device: torch.device, compile: str | None = None,
                       num_inference_steps: int = 1000, **options: Any):
    """A ``FastSampler`` at the benchmark's batch; ``options`` (batch_size, channels_last, inductor) override.

    Inductor options default to none here: the checks swap weights into a built sampler, which "freezing"
    (weights baked into the compiled code) would silently ignore.
    """
    from collapse_utils.diffusion.ddpm import SampleSettings
    from collapse_utils.diffusion.fast_sample import FastSampler

    kw: dict[str, Any] = dict(batch_size=sz.sample_batch, inductor={})
    kw.update(options)
    settings = SampleSettings(batch_size=kw.pop("batch_size"), num_inference_steps=num_inference_steps, device=device)
    return FastSampler(model, sched, settings, shape=(sz.channels, sz.resolution, sz.resolution), compile=compile,
                       **kw)


def images_per_s(ms_per_step: float, batch: int) -> float:
    """Images per second of a full 1000-step DDPM run at ``ms_per_step`` per step of ``batch`` images."""
    return batch / (1000 * ms_per_step / 1e3)


def sampling_rows(res: Results, sz: Sizes, ref_ms: float, ms: float, note: str) -> None:
    res.row(f"sampling ms per DDPM step, batch {sz.sample_batch}", ref_ms, ms, "ms", False, note)
    res.row("sampling img/s at 1000 steps", images_per_s(ref_ms, sz.sample_batch), images_per_s(ms, sz.sample_batch),
            "img/s", True, note)


# ====================================================================== sampling variants (--sections sweep)
# Candidate settings of the fast sampler, in the order they are tried; each runs in its own child process
# (a compiler crash cannot poison this one) on a random-init UNet, after everything else has finished.
SWEEP_FULL: list[dict[str, Any]] = [
    dict(name="batch 1024 (default settings)", batch_size=1024, profile=True),
    dict(name="batch 2048", batch_size=2048),
    dict(name="batch 4096", batch_size=4096),
    dict(name="batch 1024, Inductor freezing", batch_size=1024, inductor={"freezing": True}),
    dict(name="batch 1024, NCHW", batch_size=1024, channels_last=False),
    dict(name="batch 1024, coordinate-descent tuning", batch_size=1024, inductor={"coordinate_descent_tuning": True}),
    dict(name="batch 1024, max-autotune (no CUDA graphs)", batch_size=1024, inductor={"max_autotune": True}),
]
SWEEP_TINY: list[dict[str, Any]] = [
    dict(name="batch 8", batch_size=8, profile=True),
    dict(name="batch 16", batch_size=16),
]
SWEEP_VARIANT_BUDGET_S = 240.0  # one variant: start, compile (≈50 s for UNet48 on an H200), 23 steps, profile


def profile_sampler(sampler, device: torch.device, steps: int = 3, rows: int = 40) -> dict[str, Any]:
    """Where the time of ``steps`` sampling steps goes: torch.profiler's top kernels and a coarse split."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    gen = torch.Generator(device=device).manual_seed(0)
    with profile(activities=activities) as prof:
        sampler(sampler.batch_size, gen, max_steps=steps)
        sync(device)
    events = prof.key_averages()
    on_device = device.type == "cuda"

    def own_time(e) -> float:  # µs of the event itself (kernels have no children)
        if on_device:
            return float(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0.0)))
        return float(e.self_cpu_time_total)

    # on CUDA only the kernels themselves (a CPU op's "self device time" repeats its kernels' time)
    kernels = [e for e in events if own_time(e) > 0 and (not on_device or "CUDA" in str(getattr(e, "device_type", "")))]
    total = sum(own_time(e) for e in kernels) or 1.0
    split: dict[str, float] = {}
    for e in kernels:
        kind = kernel_kind(e.key)
        split[kind] = split.get(kind, 0.0) + own_time(e) / total
    top = sorted(kernels, key=own_time, reverse=True)[:rows]
    lines = [f"{own_time(e) / steps / 1e3:9.3f} ms/step {100 * own_time(e) / total:5.1f}%  x{e.count // steps:<4d} "
             f"{e.key[:150]}" for e in top]
    return dict(ms_per_step_profiled=total / steps / 1e3, split=dict(sorted(split.items(), key=lambda kv: -kv[1])),
                top=lines)


def kernel_kind(name: str) -> str:
    """A coarse class of a kernel or op name (for the profile's split)."""
    low = name.lower()
    if low.startswith("triton_tem"):
        return "triton template (conv/matmul)"
    if low.startswith("triton_"):
        return "triton (fused pointwise/norm)"
    for kind, keys in (("convolution", ("conv", "xmma", "implicit", "cudnn", "fprop", "dgrad", "wgrad")),
                       ("matmul", ("gemm", "cutlass", "matmul", "addmm", "mm")),
                       ("attention", ("attention", "flash", "sdpa", "fmha")),
                       ("norm", ("norm",)),
                       ("copy/layout", ("copy", "cat", "memcpy", "memset", "transpose", "contiguous"))):
        if any(k in low for k in keys):
            return kind
    return "other"


def forward_flops_per_image(model, sz: Sizes, device: torch.device) -> float:
    """FLOPs (2 per multiply-add) of one UNet forward pass per image (UNet48 at 32×32: 1.10 GFLOP)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros((2, sz.channels, sz.resolution, sz.resolution), device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.tensor([500, 500], device=device))
    return counter.get_total_flops() / 2


def sweep_variant_worker(sz: Sizes, device: torch.device, variant: dict[str, Any], out_json: Path) -> None:
    """Child side of the sweep: build one sampler variant (compile included), time it, maybe profile it."""
    model, sched = sampling_model(sz, device)
    options = {k: variant[k] for k in ("batch_size", "channels_last", "inductor") if k in variant}
    t0 = time.perf_counter()
    compile = "1" if device.type == "cuda" else None  # this child is the crash guard: no extra probe
    sampler = build_fast_sampler(model, sched, sz, device, compile=compile, **options)
    sampler(sampler.batch_size, torch.Generator(device=device).manual_seed(0), max_steps=2)
    sync(device)
    result: dict[str, Any] = dict(variant, build_seconds=time.perf_counter() - t0, mode=sampler.mode,
                                  channels_last=sampler.channels_last, inductor=sampler.inductor)
    out_json.write_text(json.dumps(result))
    result["ms_per_step"] = fast_step_ms(sampler, sz, device)
    # achieved rate: how far the step is from the card's matmul peak
    result["tflops"] = forward_flops_per_image(model, sz, device) * sampler.batch_size / (result["ms_per_step"] / 1e3) / 1e12
    if device.type == "cuda":
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    out_json.write_text(json.dumps(result))
    if variant.get("profile"):
        result["profile"] = profile_sampler(sampler, device)
        out_json.write_text(json.dumps(result))


def run_sweep(sz: Sizes, device: torch.device, res: Results, ref_ms: float | None, budget_s: float,
              tiny: bool, out: Path, which: list[int] | None = None) -> None:
    """Try the sampler variants ``which`` (indices, default all) each in a child process, within ``budget_s``."""
    t0 = time.perf_counter()
    found: list[dict[str, Any]] = []
    variants = SWEEP_TINY if tiny else SWEEP_FULL
    for i in which if which is not None else range(len(variants)):
        variant = variants[i]
        left = budget_s - (time.perf_counter() - t0)
        if left < min(90.0, budget_s / 2):
            print(f"[sweep] {left:.0f} s left: skipping '{variant['name']}' and the rest", flush=True)
            break
        out_json = out / f"sweep_{i}.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "sample-variant", "--device", str(device),
               "--variant", json.dumps(variant), "--worker-json", str(out_json)] + (["--tiny"] if tiny else [])
        try:
            code = subprocess.run(cmd, cwd=str(ROOT), timeout=min(SWEEP_VARIANT_BUDGET_S, left)).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        got = json.loads(out_json.read_text()) if out_json.exists() else dict(variant)
        got["exit"] = code
        found.append(got)
        res.put("sampling_sweep", found)
        if "ms_per_step" in got:
            ms, batch = got["ms_per_step"], got["batch_size"]
            res.row(f"sampling img/s at 1000 steps, variant: {variant['name']}",
                    images_per_s(ref_ms, sz.sample_batch) if ref_ms else None, images_per_s(ms, batch), "img/s", True,
                    f"{ms:.2f} ms per step at batch {batch} ({got['tflops']:.0f} TFLOP/s of UNet forward); "
                    f"{got['mode']}; built in {got['build_seconds']:.0f} s")
        if "profile" in got:
            prof = got["profile"]
            text = [f"variant: {variant['name']}; profiled {prof['ms_per_step_profiled']:.2f} ms per step",
                    "split: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in prof["split"].items()), ""] + prof["top"]
            (out / "sampling_profile.txt").write_text("\n".join(text) + "\n")
            print("\n".join(text[:2] + prof["top"][:15]), flush=True)


# ====================================================================== selection and metrics
def naive_greedy(x: torch.Tensor, picks: int, seed: int) -> list[int]:
    """The reference's farthest-point loop: one cdist per pick, argmax read back to the host each time."""
    first = int(np.random.default_rng(seed).integers(len(x)))
    chosen = [first]
    mind = torch.cdist(x[first:first + 1], x)[0]
    for _ in range(picks - 1):
        i = int(torch.argmax(mind))
        chosen.append(i)
        mind = torch.minimum(mind, torch.cdist(x[i:i + 1], x)[0])
    return chosen


def bench_greedy(sz: Sizes, device: torch.device, res: Results) -> None:
    from collapse_utils.loop.selection import greedy_selection

    gen = torch.Generator(device="cpu").manual_seed(0)
    spaces = {
        f"pixel {sz.channels * sz.resolution ** 2}-d": torch.randint(0, 256, (sz.pool, sz.channels * sz.resolution ** 2),
                                                                     generator=gen, dtype=torch.uint8),
        f"{sz.feat_dim}-d features": torch.randn((sz.pool, sz.feat_dim), generator=gen),
    }
    for name, feats in spaces.items():
        x = feats.to(device).float()
        greedy_selection(x[: min(len(x), 4096)], 16, seed=0)  # warm-up (kernels, handles)
        sync(device)
        t0 = time.perf_counter()
        ours = greedy_selection(x, sz.pick, seed=0)
        sync(device)
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive = naive_greedy(x, sz.naive_picks, seed=0)
        sync(device)
        t_naive = (time.perf_counter() - t0) * (sz.pick - 1) / (sz.naive_picks - 1)
        agree = int(np.argmax(np.append(ours[: sz.naive_picks] != np.array(naive), True)))
        res.put(f"greedy_{name}", dict(ours_s=t_ours, naive_extrapolated_s=t_naive, prefix_agreement=agree,
                                       naive_picks=sz.naive_picks))
        res.row(f"greedy selection {sz.pick:,} of {sz.pool:,}, {name}", t_naive, t_ours, "s", False,
                f"reference: cdist loop over {sz.naive_picks} picks, extrapolated; first {agree} picks identical")
        del x
        free_memory(device)


def sklearn_knn_s(train: np.ndarray, query: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    t0 = time.perf_counter()
    nn = NearestNeighbors(n_neighbors=k).fit(train)
    d, _ = nn.kneighbors(query)
    return time.perf_counter() - t0, d


def bench_metrics(sz: Sizes, device: torch.device, res: Results) -> None:
    from collapse_utils.measure.metrics import generalization_score, knn_entropy, nearest_neighbors

    rng = np.random.default_rng(2)
    dim = sz.channels * sz.resolution ** 2
    gen_np = rng.integers(0, 256, (sz.metric_n, dim), dtype=np.uint8)
    train_np = rng.integers(0, 256, (sz.metric_n, dim), dtype=np.uint8)
    gen_t, train_t = torch.from_numpy(gen_np).to(device), torch.from_numpy(train_np).to(device)
    knn_entropy(gen_t[:512], k=1)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    knn_entropy(gen_t, k=1)
    sync(device)
    t_ent = time.perf_counter() - t0
    t0 = time.perf_counter()
    generalization_score(gen_t, train_t)
    sync(device)
    t_gs = time.perf_counter() - t0
    m = sz.sklearn_n
    scale = (sz.metric_n / m) ** 2
    t_sk_ent, d_sk = sklearn_knn_s(gen_np[:m].astype(np.float32), gen_np[:m].astype(np.float32), 2)
    t_sk_gs, _ = sklearn_knn_s(train_np[:m].astype(np.float32), gen_np[:m].astype(np.float32), 1)
    d_ours, _ = nearest_neighbors(gen_t[:m], gen_t[:m], k=1, exclude_self=True)
    max_diff = float(np.max(np.abs(d_ours[:, 0] - d_sk[:, 1])))
    res.put("metrics", dict(entropy_s=t_ent, gs_s=t_gs, sklearn_entropy_s_at_m=t_sk_ent, sklearn_gs_s_at_m=t_sk_gs,
                            sklearn_m=m, nn_distance_max_abs_diff_vs_sklearn=max_diff))
    note = f"reference: sklearn NearestNeighbors at {m:,}, ×{scale:.0f} (quadratic)"
    res.row(f"KL entropy (1-NN), {sz.metric_n:,} pixel images", t_sk_ent * scale, t_ent, "s", False,
            f"{note}; 1-NN distances agree to {max_diff:.2g}")
    res.row(f"generalization score, {sz.metric_n:,} vs {sz.metric_n:,}", t_sk_gs * scale, t_gs, "s", False, note)


# ====================================================================== equality checks
def loss_window_stats(ref: list[float], ours: list[float], window: int) -> dict[str, Any]:
    """Per window: both means, the unpaired standard error, z; plus the paired per-step differences."""
    n = min(len(ref), len(ours))
    r, o = np.asarray(ref[:n]), np.asarray(ours[:n])
    windows = []
    for s in range(0, n - window + 1, window):
        a, b = r[s:s + window], o[s:s + window]
        se = math.sqrt(a.var(ddof=1) / window + b.var(ddof=1) / window)
        windows.append(dict(steps=f"{s + 1}-{s + window}", ref=float(a.mean()), ours=float(b.mean()),
                            z=float((b.mean() - a.mean()) / se) if se > 0 else 0.0))
    d = o - r
    return dict(steps=n, windows=windows, max_abs_z=max((abs(w["z"]) for w in windows), default=0.0),
                paired_mean_diff=float(d.mean()), paired_sd=float(d.std(ddof=1)) if n > 1 else 0.0,
                ref_mean_last_half=float(r[n // 2:].mean()), ours_mean_last_half=float(o[n // 2:].mean()))


def ref_loss_worker(sz: Sizes, device: torch.device, steps: int, out_json: Path) -> None:
    """Train the reference for ``steps`` on the check images, writing the losses as they come."""
    from collapse_utils.diffusion.ddpm import TrainJob
    from collapse_utils.diffusion.train import train_reference

    images, _ = check_images(sz)
    losses: list[float] = []
    t0 = time.perf_counter()

    def on_step(step: int, loss: float) -> None:
        losses.append(loss)
        if step % 100 == 0 or step == steps:
            out_json.write_text(json.dumps({"losses": losses, "seconds": time.perf_counter() - t0}))

    cfg = train_config(sz, steps, "fp16").replace(n=len(images))
    result = train_reference(TrainJob(images=images, labels=None, cfg=cfg, seed=0, device=device, on_step=on_step))
    out_json.write_text(json.dumps({"losses": result.losses, "seconds": time.perf_counter() - t0,
                                    "mixed_precision": result.mixed_precision, "done": True}))


def start_ref_loss(sz: Sizes, device: torch.device, steps: int, out_json: Path, tiny: bool) -> subprocess.Popen:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "ref-loss", "--device", str(device),
           "--loss-steps", str(steps), "--worker-json", str(out_json)] + (["--tiny"] if tiny else [])
    return subprocess.Popen(cmd, cwd=str(ROOT))


def check_fp32_equal(sz: Sizes, device: torch.device, res: Results) -> None:
    """Both recipes in fp32 from the same seed: the same draws and maths, so (nearly) the same losses."""
    from collapse_utils.diffusion.ddpm import TrainJob
    from collapse_utils.diffusion.fast_train import train_fast
    from collapse_utils.diffusion.train import train_reference

    images, _ = check_images(sz)
    cfg = train_config(sz, sz.exact_steps, "no").replace(n=len(images))
    reset_accelerate()
    job = TrainJob(images=images, labels=None, cfg=cfg, seed=0, device=device)
    ref = train_reference(job)
    out = train_fast(job)
    rel = np.abs(np.asarray(out.losses) - np.asarray(ref.losses)) / np.abs(np.asarray(ref.losses))
    res.put("fp32_loss_agreement", dict(steps=sz.exact_steps, max_rel_first3=float(rel[:3].max()),
                                        max_rel_all=float(rel.max()), ref=ref.losses[:5], ours=out.losses[:5],
                                        mode=out.info["mode"]))
    res.row(f"fp32 losses, same seed, {sz.exact_steps} steps: max relative difference", None, float(rel.max()), "",
            False, f"first 3 steps {rel[:3].max():.2g}; ours {out.info['mode']}")
    free_memory(device)


def train_fast_curve(sz: Sizes, device: torch.device, steps: int):
    from collapse_utils.diffusion.ddpm import TrainJob
    from collapse_utils.diffusion.fast_train import train_fast

    images, source = check_images(sz)
    cfg = train_config(sz, steps, "fp16").replace(n=len(images))
    return train_fast(TrainJob(images=images, labels=None, cfg=cfg, seed=0, device=device)), source


def check_loss_curve(ref_json: Path, ours: list[float], sz: Sizes, res: Results, source: str) -> None:
    ref = json.loads(ref_json.read_text())
    stats = loss_window_stats(ref["losses"], ours, sz.loss_window)
    stats.update(source=source, ref_seconds=ref.get("seconds"), ref_complete=bool(ref.get("done")))
    res.put("loss_curve", stats)
    ok = stats["max_abs_z"] < 3.0
    res.row(f"loss curve, first {stats['steps']} steps, {sz.loss_window}-step windows: max abs z", None,
            stats["max_abs_z"], "", False,
            f"{'within' if ok else 'OUTSIDE'} noise (abs z < 3); last-half mean ref {stats['ref_mean_last_half']:.4f} "
            f"vs ours {stats['ours_mean_last_half']:.4f}; {source}")


def check_sampling(model, sampler, sz: Sizes, device: torch.device, res: Results) -> None:
    """Same generator, reference fp32 vs fast path: one-step ε and whole trajectories."""
    from collapse_utils.diffusion.ddpm import to_uint8
    from collapse_utils.diffusion.sample import sample_batch

    model = model.to(device).eval()
    with torch.no_grad():
        sampler.model.load_state_dict(model.state_dict())  # the compiled step reads the weights as inputs
    shape = (sz.channels, sz.resolution, sz.resolution)
    g = torch.Generator(device=device).manual_seed(11)
    x = torch.randn((sz.agree_images, *shape), generator=g, device=device)
    eps_err = {}
    with torch.no_grad():
        for t in (999, 500, 50, 0):
            tt = torch.tensor(t, device=device)
            ref = model(x, tt).sample.float()
            ours = sampler.epsilon(x, tt, None)
            eps_err[t] = float((ours - ref).norm() / ref.norm())
    ref_x = sample_batch(model, sampler_scheduler(sz), sz.agree_images, generator=torch.Generator(device=device).manual_seed(5),
                         shape=shape, num_inference_steps=sz.agree_steps)
    fast_x = sampler(sz.agree_images, torch.Generator(device=device).manual_seed(5))
    rel = float((fast_x - ref_x).norm() / ref_x.norm())
    a, b = to_uint8(ref_x).astype(np.int16), to_uint8(fast_x).astype(np.int16)
    diff = np.abs(a - b)
    stats = dict(eps_rel_err=eps_err, trajectory_rel_l2=rel, uint8_mean_abs=float(diff.mean()), uint8_max=int(diff.max()),
                 uint8_frac_gt8=float((diff > 8).mean()), images=sz.agree_images, steps=sz.agree_steps, mode=sampler.mode)
    res.put("sampling_agreement", stats)
    res.row("sampling at fixed noise: one-step ε relative error (max over t)", None, max(eps_err.values()), "", False,
            "reference fp32 vs ours " + ("bf16" if sampler.precision == "bf16" else "fp32"))
    res.row(f"sampling at fixed noise, {sz.agree_images} images × {sz.agree_steps} steps: relative L2", None, rel, "",
            False, f"uint8 mean abs diff {diff.mean():.2f}, max {int(diff.max())}, {100 * (diff > 8).mean():.2f}% of pixels > 8 levels")


def sampler_scheduler(sz: Sizes):
    from collapse_utils.diffusion.models import build_scheduler

    return build_scheduler()


# ====================================================================== main
def run(args: argparse.Namespace) -> Results:
    sz = TINY if args.tiny else FULL
    if args.loss_steps is not None:
        sz.loss_steps = args.loss_steps
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(args.out) if args.out else None
    res = Results(out, device)
    res.put("sizes", asdict(sz))
    wanted = set(args.sections.split(","))
    t_start = time.perf_counter()
    print(f"device: {res.data['device']}; torch {torch.__version__}", flush=True)

    if "train" in wanted:
        section("train", lambda: bench_training(sz, device, res), res)
    model, sched = sampling_model(sz, device)
    ref_ms: dict[str, float] = {}
    if "sample" in wanted:
        section("sample_reference", lambda: ref_ms.setdefault("ms", ref_step_ms(model, sched, sz, device)), res)
    if "select" in wanted:
        section("greedy", lambda: bench_greedy(sz, device, res), res)
    if "metrics" in wanted:
        section("metrics", lambda: bench_metrics(sz, device, res), res)

    # --- the reference's loss curve trains beside the untimed work below
    checks = "checks" in wanted
    ref_json = (out or Path("/tmp")) / f"ref_loss_{os.getpid()}.json"
    worker = None
    if checks:
        if device.type == "cuda":
            worker = start_ref_loss(sz, device, sz.loss_steps, ref_json, args.tiny)
        else:
            section("ref_loss_curve", lambda: ref_loss_worker(sz, device, sz.loss_steps, ref_json), res)
    holder: dict[str, Any] = {}
    if "sample" in wanted or checks:
        def build() -> None:
            t0 = time.perf_counter()
            holder["sampler"] = build_fast_sampler(model, sched, sz, device,
                                                   num_inference_steps=1000 if not args.tiny else sz.agree_steps)
            holder["sampler"](sz.sample_batch, torch.Generator(device=device).manual_seed(0), max_steps=2)
            sync(device)
            res.put("sampler_build", dict(seconds=time.perf_counter() - t0, mode=holder["sampler"].mode))
        section("sampler_build", build, res)
    if checks:
        section("fast_loss_curve", lambda: holder.setdefault("curve", train_fast_curve(sz, device, sz.loss_steps)), res)
        section("fp32_equal", lambda: check_fp32_equal(sz, device, res), res)
        if "curve" in holder and "sampler" in holder:
            section("sampling_agreement",
                    lambda: check_sampling(holder["curve"][0].model, holder["sampler"], sz, device, res), res)
        if worker is not None:
            left = args.deadline - (time.perf_counter() - t_start)
            try:
                worker.wait(timeout=max(1.0, left))
            except subprocess.TimeoutExpired:
                print("[checks] reference loss curve not finished by the deadline; comparing its prefix", flush=True)
                worker.terminate()
                worker.wait()
        if "curve" in holder and ref_json.exists():
            section("loss_curve", lambda: check_loss_curve(ref_json, holder["curve"][0].losses, sz, res,
                                                           holder["curve"][1]), res)

    if "sample" in wanted and "ms" in ref_ms and "sampler" in holder:
        def fast_rows() -> None:
            s = holder["sampler"]
            with torch.no_grad():  # back to the benchmark's random-init weights
                s.model.load_state_dict(model.state_dict())
            ms = fast_step_ms(s, sz, device)
            precision = s.precision if s.precision != "no" else "fp32"
            sampling_rows(res, sz, ref_ms["ms"], ms, f"reference fp32 eager; ours {precision} {s.mode}")
            if device.type == "cuda":
                eager = build_fast_sampler(model, sched, sz, device, compile="0")
                sampling_rows(res, sz, ref_ms["ms"], fast_step_ms(eager, sz, device),
                              f"ours {eager.precision} eager (no compile)")
        section("sample_fast", fast_rows, res)

    if "sweep" in wanted:
        sweep_out = out or Path(f"/tmp/gpu_sweep_{os.getpid()}")
        sweep_out.mkdir(parents=True, exist_ok=True)
        budget = min(args.sweep_budget, args.total_budget - (time.perf_counter() - t_start))
        which = [int(i) for i in args.sweep_variants.split(",")] if args.sweep_variants else None
        section("sampling_sweep", lambda: run_sweep(sz, device, res, ref_ms.get("ms"), budget, args.tiny,
                                                    sweep_out, which), res)

    res.put("total_seconds", time.perf_counter() - t_start)
    print("\n" + res.markdown(), flush=True)
    return res


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="toy sizes (CPU, seconds): for CI")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--out", help="folder for results.json and table.md")
    p.add_argument("--sections", default="train,sample,select,metrics,checks",
                   help="comma-separated; 'sweep' (not in the default) times sampler variants and profiles one")
    p.add_argument("--loss-steps", type=int, help="steps of the loss-curve check (default 2000; tiny 12)")
    p.add_argument("--deadline", type=float, default=480.0, help="seconds after which the loss-curve wait gives up")
    p.add_argument("--sweep-budget", type=float, default=330.0,
                   help="seconds for the sampler variants of --sections …,sweep (each in a child process)")
    p.add_argument("--sweep-variants", help="comma-separated indices into SWEEP_FULL (default: all, in order)")
    p.add_argument("--total-budget", type=float, default=570.0,
                   help="seconds after the start by which the sweep stops launching variants")
    p.add_argument("--worker", choices=("ref-loss", "sample-variant"), help=argparse.SUPPRESS)
    p.add_argument("--worker-json", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker == "ref-loss":
        sz = TINY if args.tiny else FULL
        ref_loss_worker(sz, torch.device(args.device), args.loss_steps or sz.loss_steps, Path(args.worker_json))
        return 0
    if args.worker == "sample-variant":
        sz = TINY if args.tiny else FULL
        sweep_variant_worker(sz, torch.device(args.device), json.loads(args.variant), Path(args.worker_json))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
