"""A real tiny UNet on real digits: the loss falls, sampling is seeded and batch-invariant, CFG behaves."""

import numpy as np
import pytest

from _unets import tiny_unet
from collapse_utils.core.config import make_config
from collapse_utils.diffusion.ddpm import EpochStream, balanced_labels, lr_at
from collapse_utils.diffusion.models import build_scheduler
from collapse_utils.diffusion.sample import sample_images
from collapse_utils.diffusion.train import train_model


def test_tiny_unet_loss_falls_on_real_digits(digits8):
    images, _ = digits8
    cfg = make_config("smoke", train_steps=120, batch_size=32, lr=2e-3, warmup_steps=10)
    result = train_model(images[:256], None, cfg, seed=0, device="cpu")
    first, last = np.mean(result.losses[:15]), np.mean(result.losses[-15:])
    assert result.steps == 120 and len(result.losses) == 120
    assert last < 0.6 * first, (first, last)


def test_training_is_deterministic(digits8):
    images, _ = digits8
    cfg = make_config("smoke", train_steps=6)
    a = train_model(images[:64], None, cfg, seed=3, device="cpu")
    b = train_model(images[:64], None, cfg, seed=3, device="cpu")
    c = train_model(images[:64], None, cfg, seed=4, device="cpu")
    assert a.losses == b.losses and a.losses != c.losses


def test_epoch_stream_visits_every_image_once_per_epoch():
    s = EpochStream(n=10, batch_size=4, seed=0)
    seen = np.concatenate([s.batch(i) for i in range(5)])  # 20 positions = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    np.testing.assert_array_equal(s.batch(3), EpochStream(10, 4, 0).batch(3))


def test_cosine_schedule_shape():
    cfg = make_config("smoke", lr=1.0, warmup_steps=10, train_steps=110)
    assert lr_at(0, cfg) == 0 and lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.5) and lr_at(110, cfg) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def tiny_model():
    return tiny_unet()


def test_sampling_is_seeded_and_independent_of_batching(tiny_model):
    sch = build_scheduler()
    a = sample_images(tiny_model, sch, 10, seed=5, batch_size=4, num_inference_steps=4, progress=False)
    b = sample_images(tiny_model, sch, 10, seed=5, batch_size=4, num_inference_steps=4, progress=False)
    c = sample_images(tiny_model, sch, 10, seed=6, batch_size=4, num_inference_steps=4, progress=False)
    assert a.shape == (10, 8, 8, 1) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sampling_resumes_from_part_files(tiny_model, tmp_path):
    sch = build_scheduler()
    full = sample_images(tiny_model, sch, 10, seed=1, batch_size=4, num_inference_steps=3, progress=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    sample_images(tiny_model, sch, 10, seed=1, batch_size=4, num_inference_steps=3, parts_dir=parts, progress=False)
    (parts / "part_000001.npy").unlink()  # as if killed before the second batch was written
    (parts / "part_000002.npy").write_bytes(b"garbage")  # or while writing the third
    again = sample_images(tiny_model, sch, 10, seed=1, batch_size=4, num_inference_steps=3, parts_dir=parts, progress=False)
    np.testing.assert_array_equal(full, again)


def test_guidance_zero_is_unconditional_sampling(digits8):
    images, labels = digits8
    cfg = make_config("smoke", conditional=True, train_steps=3)
    model = train_model(images[:64], labels[:64], cfg, seed=0, device="cpu").model
    sch = build_scheduler()
    y = balanced_labels(6, 10)
    guided0 = sample_images(model, sch, 6, seed=2, batch_size=6, num_inference_steps=3, labels=y, guidance_scale=0.0,
                            null_class=10, progress=False)
    null = sample_images(model, sch, 6, seed=2, batch_size=6, num_inference_steps=3, labels=np.full(6, 10),
                         guidance_scale=1.0, null_class=10, progress=False)
    np.testing.assert_array_equal(guided0, null)
    guided2 = sample_images(model, sch, 6, seed=2, batch_size=6, num_inference_steps=3, labels=y, guidance_scale=2.0,
                            null_class=10, progress=False)
    assert guided2.shape == (6, 8, 8, 1)


def test_sampling_rejects_bad_requests(tiny_model):
    with pytest.raises(ValueError):
        sample_images(tiny_model, build_scheduler(), 0, seed=0, progress=False)
    with pytest.raises(ValueError, match="labels"):
        sample_images(tiny_model, build_scheduler(), 4, seed=0, labels=np.zeros(3), progress=False)
