"""Scale-out on CPU with 2 processes (gloo): data-parallel training and the self-consuming loop with sharded sampling.

The processes are started with ``torchrun`` (``python -m torch.distributed.run``): ``accelerate launch --cpu
--num_processes 2`` starts a single process unless an MPI hostfile is given, while under torchrun accelerate's
``PartialState(cpu=True)`` (as the loop and the scripts create it) sets up the gloo group itself. On GPUs
``accelerate launch --num_processes N`` works as the README says.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(args: list[str], timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", OMP_NUM_THREADS="1", **extra_env)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def dp_reports(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("dp")
    _torchrun([str(ROOT / "tests" / "_dp_train_script.py"), str(out)])
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("recipe", ["reference", "fast"])
def test_data_parallel_replicas_stay_identical_and_resume_exactly(dp_reports, recipe):
    r0, r1 = (r[recipe] for r in dp_reports)
    assert [r["world"] for r in dp_reports] == [2, 2] and [r["rank"] for r in dp_reports] == [0, 1]
    # gradients are averaged: both replicas end with the same weights
    assert r0["weights"] == r1["weights"]
    # each rank trains on its own half of the global batch with its own noise
    assert r0["losses"] != r1["losses"]
    # stopped after step 5 and resumed from the step-4 checkpoint: every rank continues its own noise stream
    # (the loss history kept in the checkpoint is the main process's, as the run's train_log.json is)
    assert r0["resumed_losses"] == r0["losses"]
    for r in (r0, r1):
        assert r["resumed_losses"][4:] == r["losses"][4:] and r["resumed_weights"] == r["weights"]
    if recipe == "fast":
        assert r0["info"]["world"] == 2


def test_data_parallel_recipes_agree(dp_reports):
    """Same draws, same maths in fp32: the reference (through accelerate) and the fast path end identical.

    This also pins the LR schedule to one step per optimizer step under several processes (accelerate
    steps a prepared scheduler once per process unless batches are split).
    """
    for r in dp_reports:
        assert r["fast"]["weights"] == r["reference"]["weights"]
        np.testing.assert_allclose(r["fast"]["losses"], r["reference"]["losses"], rtol=1e-6)


def test_smoke_loop_two_processes_shards_sampling_exactly(tmp_path):
    from diffusers import UNet2DModel

    from collapse_utils.core import io as cio
    from collapse_utils.core.config import derive_seed
    from collapse_utils.loop.rundir import load_run
    from collapse_utils.diffusion.models import build_scheduler
    from collapse_utils.diffusion.sample import sample_images

    run_dir = tmp_path / "run"
    cli = ["run", "--preset", "smoke", "--n", "16", "--generations", "2", "--train-steps", "4", "--sample-steps", "3",
           "--sample-batch-size", "4", "--checkpoint-every", "2", "--device", "cpu", "--no-progress", "--out", str(run_dir)]
    _torchrun([str(ROOT / "tests" / "_dp_cli.py")], DP_CLI_ARGS=json.dumps(cli))
    result = load_run(run_dir)
    cfg = result.config
    assert [g.generation for g in result.generations] == [1, 2]
    for g in result.generations:
        d = g.dir
        assert (d / "DONE").exists() and (d / "model" / "COMPLETE").exists() and (d / "metrics.json").exists()
        assert not (d / "sample_parts").exists() and not (d / "ckpt").exists()
        assert cio.read_json(d / "train_log.json")["steps"] == 4
        samples = g.samples
        assert samples.shape == (16, 8, 8, 1) and samples.dtype == np.uint8
        assert np.isfinite(g.metrics["gs_pixel"])
        # 4 batches of 4 were sampled by 2 processes; one process with the same seed draws the same images
        model = UNet2DModel.from_pretrained(d / "model", subfolder="unet")
        single = sample_images(model, build_scheduler(), 16, seed=derive_seed(cfg.seed, g.generation, "sample"),
                               batch_size=cfg.sample_batch_size, num_inference_steps=cfg.num_inference_steps,
                               device="cpu", progress=False)
        np.testing.assert_array_equal(single, samples)
    np.testing.assert_array_equal(result.generations[1].train_images, result.generations[0].samples)
    from collapse_utils.loop.tracking import installed

    if installed("tensorboard"):  # only the main process logs: one event file
        assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1
