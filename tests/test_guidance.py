"""Class-conditional runs with classifier-free guidance (F11), on CPU with tiny real UNets.

Covers the conditional training step (label dropout to the null class), guided sampling (the CFG formula, w = 0
equals unconditional sampling at the same noise, labels are honoured after training on a toy set), per-class
selection keeping class counts, and labels flowing through the self-consuming loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from collapse_utils.diffusion.family import UNetFamily
from collapse_utils.core.config import make_config
from collapse_utils.loop.experiments import guidance_experiment
from collapse_utils.diffusion.ddpm import balanced_labels, drop_labels, guided_epsilon, null_class
from collapse_utils.loop.run import run_self_consuming
from collapse_utils.diffusion.models import build_scheduler, build_unet
from collapse_utils.loop.paradigms import Pool, even_counts, select_from_pool
from collapse_utils.diffusion.sample import model_null_class, sample_images
from collapse_utils.diffusion.train import check_labels, train_model

NULL = 10


# ---------------------------------------------------------------------------------------------- helpers
def _toy_halves(per_class: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Two 8×8 classes of opposite images: label 0 is bright on the left half, label 1 on the right half.

    (Not all-dark vs all-bright: GroupNorm normalises a constant image's brightness away, so a tiny UNet needs far
    more steps to learn it; opposite halves are as different and survive normalisation.)
    """
    left = np.zeros((8, 8, 1), np.uint8)
    left[:, :4] = 255
    images = np.stack([left] * per_class + [left[:, ::-1]] * per_class)
    return images, np.repeat([0, 1], per_class).astype(np.int64)


def _left_minus_right(images: np.ndarray) -> np.ndarray:
    x = images.astype(np.float64)
    return x[:, :, :4].reshape(len(x), -1).mean(1) - x[:, :, 4:].reshape(len(x), -1).mean(1)


@pytest.fixture(scope="module")
def cond_model() -> torch.nn.Module:
    """An untrained conditional tiny UNet (10 classes + the null class): CFG identities hold for any weights."""
    torch.manual_seed(0)
    return build_unet("tiny", resolution=8, channels=1, num_classes=10).eval()


# ---------------------------------------------------------------------------------------------- training
def test_label_dropout_rate_and_null_class():
    labels = torch.arange(50_000) % 10
    gen = torch.Generator().manual_seed(0)
    out = drop_labels(labels, 0.1, gen, NULL)
    dropped = out == NULL
    rate = dropped.float().mean().item()
    sd = (0.1 * 0.9 / len(labels)) ** 0.5
    assert abs(rate - 0.1) < 5 * sd, rate
    assert torch.equal(out[~dropped], labels[~dropped])  # kept labels are untouched
    per_class = torch.stack([dropped[labels == c].float().mean() for c in range(10)])
    assert (per_class - 0.1).abs().max() < 0.02  # dropout does not depend on the class
    assert torch.equal(drop_labels(labels, 0.0, gen, NULL), labels)


def test_conditional_training_step_uses_labels_and_the_null_class(monkeypatch):
    images, labels = _toy_halves(16)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    loss_fn = UNetFamily.loss  # the family's DDPM ε objective, which the reference recipe trains with

    def spy(model, scheduler, clean, generator, class_labels=None):
        seen.append((clean.detach().clone(), class_labels.detach().clone()))
        return loss_fn(model, scheduler, clean, generator, class_labels)

    monkeypatch.setattr(UNetFamily, "loss", staticmethod(spy))
    cfg = make_config("smoke", conditional=True, num_classes=2, label_dropout=0.3, train_steps=25, batch_size=16,
                      weight_decay=0.0, progress=False)
    result = train_model(images, labels, cfg, seed=0, device="cpu")
    assert np.isfinite(result.losses).all() and len(result.losses) == 25
    clean = torch.cat([c for c, _ in seen])
    y = torch.cat([lab for _, lab in seen])
    assert null_class(cfg.num_classes) == 2 and set(y.tolist()) == {0, 1, 2}
    assert abs((y == 2).float().mean().item() - 0.3) < 0.1  # 400 labels: ±5 sd
    true = (clean[:, 0, :, :4].mean((1, 2)) < 0).long()  # label 1 is dark on the left
    kept = y != 2
    assert torch.equal(y[kept], true[kept])  # every kept label is the image's own


def test_null_class_embedding_is_trained_only_with_label_dropout():
    images, labels = _toy_halves(16)

    def null_row(p: float) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = make_config("smoke", conditional=True, num_classes=2, label_dropout=p, train_steps=5, batch_size=16,
                          weight_decay=0.0, progress=False)
        torch.manual_seed(0)
        init = build_unet(cfg.model, resolution=8, channels=1, num_classes=2).class_embedding.weight[2].detach().clone()
        model = train_model(images, labels, cfg, seed=0, device="cpu").model
        return init, model.class_embedding.weight[2].detach()

    init, after = null_row(0.0)
    assert torch.equal(init, after)
    init, after = null_row(0.5)
    assert not torch.allclose(init, after)


def test_conditional_training_refuses_missing_or_bad_labels():
    cfg = make_config("smoke", conditional=True, train_steps=1)
    images = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError, match="needs class labels"):
        train_model(images, None, cfg, seed=0, device="cpu")
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        check_labels(np.array([0, 1, 2, 10]), 4, cfg)  # the null class is not a training label
    with pytest.raises(ValueError, match="shape"):
        check_labels(np.array([0, 1]), 4, cfg)
    check_labels(None, 4, make_config("smoke"))  # unconditional: labels are not needed


# ---------------------------------------------------------------------------------------------- guided sampling
def test_guided_epsilon_is_the_cfg_combination(cond_model):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 1, 8, 8, generator=gen)
    t = torch.tensor(500)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        eps_c = cond_model(x, t, class_labels=y).sample
        eps_u = cond_model(x, t, class_labels=torch.full_like(y, NULL)).sample
        assert torch.equal(guided_epsilon(cond_model, x, t, y, 1.0, NULL), eps_c)
        assert torch.equal(guided_epsilon(cond_model, x, t, y, 0.0, NULL), eps_u)
        for w in (2.0, 0.5, 4.0):
            torch.testing.assert_close(guided_epsilon(cond_model, x, t, y, w, NULL), eps_u + w * (eps_c - eps_u),
                                       rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="null class"):
            guided_epsilon(cond_model, x, t, y, 2.0, None)


def test_guidance_zero_equals_unconditional_sampling_of_the_same_model(cond_model):
    sch = build_scheduler()
    kw = dict(seed=3, batch_size=4, num_inference_steps=4, progress=False)
    unconditional = sample_images(cond_model, sch, 10, **kw)  # no labels: ∅ for every image
    for labels in (balanced_labels(10, 10), np.full(10, 7)):
        w0 = sample_images(cond_model, sch, 10, labels=labels, guidance_scale=0.0, **kw)
        np.testing.assert_array_equal(w0, unconditional)
    w2 = sample_images(cond_model, sch, 10, labels=balanced_labels(10, 10), guidance_scale=2.0, **kw)
    w2_again = sample_images(cond_model, sch, 10, labels=balanced_labels(10, 10), guidance_scale=2.0, null_class=NULL, **kw)
    np.testing.assert_array_equal(w2, w2_again)  # the null class defaults to the model's own
    assert not np.array_equal(w2, unconditional)


def test_sampling_checks_labels_against_the_model(cond_model):
    sch = build_scheduler()
    assert model_null_class(cond_model) == NULL
    plain = build_unet("tiny", resolution=8, channels=1)
    assert model_null_class(plain) is None
    kw = dict(seed=0, num_inference_steps=2, progress=False)
    with pytest.raises(ValueError, match="unconditional"):
        sample_images(plain, sch, 4, labels=np.zeros(4, np.int64), **kw)
    with pytest.raises(ValueError, match="null class"):
        sample_images(cond_model, sch, 4, labels=np.zeros(4, np.int64), null_class=3, **kw)
    with pytest.raises(ValueError, match="lie in"):
        sample_images(cond_model, sch, 4, labels=np.array([0, 1, 2, 11]), **kw)


def test_guided_samples_honour_their_labels_after_training_on_a_toy_set():
    images, labels = _toy_halves(32)
    cfg = make_config("smoke", conditional=True, num_classes=2, train_steps=160, batch_size=32, lr=3e-3,
                      warmup_steps=10, weight_decay=0.0, progress=False)
    model = train_model(images, labels, cfg, seed=0, device="cpu").model
    y = np.repeat([0, 1], 8)
    kw = dict(seed=1, batch_size=16, num_inference_steps=20, labels=y, progress=False)
    guided = _left_minus_right(sample_images(model, build_scheduler(), 16, guidance_scale=2.0, **kw))
    # label 0: bright left half (difference near +255); label 1: bright right half (near -255)
    assert (guided[:8] > 64).all() and (guided[8:] < -64).all(), guided.round()
    unguided = _left_minus_right(sample_images(model, build_scheduler(), 16, guidance_scale=0.0, **kw))
    margin = lambda d: np.concatenate([d[:8], -d[8:]]).mean()  # noqa: E731
    assert margin(guided) > margin(unguided) + 50, (guided.round(), unguided.round())


# ---------------------------------------------------------------------------------------------- selection
def _labelled_pool(counts: list[int], seed: int = 0) -> Pool:
    """Class 0 images are spread over the whole pixel range, the other classes are near-constant grey."""
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    for c, k in enumerate(counts):
        if c == 0:
            parts.append(rng.integers(0, 256, (k, 8, 8, 1)))
        else:
            parts.append(np.clip(20 * c + rng.integers(-2, 3, (k, 8, 8, 1)), 0, 255))
        labels.append(np.full(k, c))
    labels_arr = np.concatenate(labels).astype(np.int64)
    return Pool(np.concatenate(parts).astype(np.uint8), rng.integers(0, 3, len(labels_arr)).astype(np.int16), labels_arr)


@pytest.mark.parametrize("method", ["random", "greedy", "threshold"])
def test_per_class_selection_keeps_class_counts(method):
    counts = [30, 12, 25, 9, 40]  # an unbalanced pool
    pool = _labelled_pool(counts)
    cfg = make_config("smoke", conditional=True, num_classes=5, selection=method, class_selection="per_class")
    n = 23
    picked = select_from_pool(pool, n, cfg, seed=0, paradigm_kind="accumulate")
    np.testing.assert_array_equal(np.bincount(picked.labels, minlength=5), even_counts(n, 5))
    # a subset of the pool, each image with its own label and source
    keys = {(img.tobytes(), int(lab), int(src)) for img, lab, src in zip(pool.images, pool.labels, pool.sources)}
    assert all((img.tobytes(), int(lab), int(src)) in keys
               for img, lab, src in zip(picked.images, picked.labels, picked.sources))
    assert len({img.tobytes() for img in picked.images}) == n


def test_global_selection_can_unbalance_classes_and_per_class_cannot():
    pool = _labelled_pool([40, 40])  # class 0 spread out, class 1 clustered
    kw = dict(conditional=True, num_classes=2, selection="greedy")
    glob = select_from_pool(pool, 20, make_config("smoke", class_selection="global", **kw), seed=0)
    per = select_from_pool(pool, 20, make_config("smoke", class_selection="per_class", **kw), seed=0)
    assert np.bincount(glob.labels, minlength=2)[0] >= 18  # a diversity criterion favours the spread-out class
    np.testing.assert_array_equal(np.bincount(per.labels, minlength=2), [10, 10])


def test_per_class_selection_refuses_a_class_with_too_few_candidates():
    pool = _labelled_pool([20, 2])
    cfg = make_config("smoke", conditional=True, num_classes=2, selection="greedy")
    with pytest.raises(ValueError, match="class 1 has 2 candidates"):
        select_from_pool(pool, 10, cfg, seed=0)


# ---------------------------------------------------------------------------------------------- the loop
def _find_label(image: np.ndarray, images: np.ndarray, labels: np.ndarray) -> set[int]:
    hits = np.flatnonzero((images == image).reshape(len(images), -1).all(1))
    return {int(labels[i]) for i in hits}


@pytest.mark.parametrize("paradigm,selection", [("accumulate_subsample", "threshold"), ("replace", "greedy")])
def test_labels_flow_through_a_conditional_smoke_loop(paradigm, selection, tmp_path):
    n = 20
    cfg = make_config("smoke", conditional=True, n=n, generations=3, paradigm=paradigm, selection=selection,
                      train_steps=3, num_inference_steps=3, progress=False)
    result = run_self_consuming(cfg, tmp_path / "run")
    real_images = result.real_images()
    real_labels = np.load(tmp_path / "run" / "real" / "labels.npy")
    samples = {}
    for g in result.generations:
        train = g.train_images
        train_labels = np.load(g.dir / "train_labels.npy")
        sample_labels = np.load(g.dir / "sample_labels.npy")
        samples[g.generation] = (g.samples, sample_labels)
        assert train_labels.shape == (len(train),) and train_labels.dtype == np.int64
        np.testing.assert_array_equal(sample_labels, balanced_labels(cfg.samples_per_generation, 10))
        assert len(g.samples) == len(sample_labels)
        if g.generation == 1:
            np.testing.assert_array_equal(train_labels, real_labels[:n])
            continue
        np.testing.assert_array_equal(np.bincount(train_labels, minlength=10), even_counts(n, 10))  # per class
        for img, lab, src in zip(train, train_labels, g.train_sources):
            images, labels = (real_images, real_labels) if src == 0 else samples[int(src)]
            assert lab in _find_label(img, images, labels)  # each image kept the label it came with
    assert all(g.metrics["train_size"] == n for g in result.generations)


def test_guidance_experiment_runs():
    configs = guidance_experiment("smoke")
    assert [(c.conditional, c.selection) for c in configs] == [(False, "none"), (True, "none"), (True, "threshold")]
    assert all(c.paradigm == "accumulate_subsample" and c.dataset == "mnist" for c in configs)
    assert configs[1].guidance_scale == configs[2].guidance_scale == 2.0
    assert configs[2].class_selection == "per_class" and configs[2].label_dropout == 0.1
    assert len({c.run_key() for c in configs}) == 3
    glob = guidance_experiment("smoke", class_selection="global")
    assert glob[2].class_selection == "global" and glob[2].run_key() != configs[2].run_key()
    assert [c.run_key() for c in glob[:2]] == [c.run_key() for c in configs[:2]]  # only the selecting run changes


def test_demo_cfg_baseline_is_the_selection_grids_vanilla_accumulate_run():
    from collapse_utils.loop.experiments import selection_grid

    unconditional = guidance_experiment("demo")[0]
    grid = selection_grid("demo", paradigms=("accumulate_subsample",), methods=("none",))
    assert unconditional.run_key() in {c.run_key() for c in grid}  # the run store trains it once for F7-F9 and F11


def test_config_refuses_bad_guidance():
    with pytest.raises(ValueError, match="guidance_scale"):
        make_config("smoke", conditional=True, guidance_scale=-1.0)
    with pytest.raises(ValueError, match="num_classes"):
        make_config("smoke", conditional=True, num_classes=1)


def test_cli_runs_a_conditional_loop(tmp_path, capsys):
    import json

    from collapse_utils.__main__ import main as cli_main

    out = tmp_path / "run"
    rc = cli_main(["run", "--preset", "smoke", "--conditional", "--guidance-scale", "3", "--label-dropout", "0.2",
                   "--class-selection", "global", "--n", "20", "--generations", "1", "--train-steps", "2",
                   "--sample-steps", "2", "--no-progress", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["conditional"], cfg["guidance_scale"], cfg["label_dropout"], cfg["class_selection"]) == (True, 3.0, 0.2, "global")
    np.testing.assert_array_equal(np.load(out / "gen_01" / "sample_labels.npy"), balanced_labels(20, 10))


# ---------------------------------------------------------------------------------------------- F11 figure pieces
def test_f11_figure_configs_are_the_guidance_experiment():
    from collapse_utils.paper import figures

    keys = [c.run_key() for c in figures.figure_configs("F11", "smoke")]
    assert keys == [c.run_key() for c in guidance_experiment("smoke")]
    greedy = figures.figure_configs("F11", "smoke", methods=["none", "greedy"], guidance_scale=3.0)
    assert greedy[2].selection == "greedy" and greedy[1].guidance_scale == 3.0 and greedy[0].run_key() == keys[0]
    with pytest.raises(ValueError, match="one selection method"):
        figures.figure_configs("F11", "smoke", methods=["none", "greedy", "threshold"])


def test_digit_rows_and_within_digit_diversity():
    from collapse_utils.paper.analysis import digit_rows, within_class_mnnd

    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1) * np.ones((1, 2, 2, 1), np.uint8)
    labels = np.array([1, 0, 1, 0, 1, 2])
    rows = digit_rows(images, labels, 3, 2)
    np.testing.assert_array_equal(rows[:, 0, 0, 0], [1, 3, 0, 2, 5, 0])  # row c: first two of class c, black pad
    same = np.repeat(images[:1], 4, axis=0)
    assert within_class_mnnd(same, np.array([0, 0, 1, 1]), 2) == 0.0  # one style per digit: no diversity
    assert within_class_mnnd(images, labels, 3) > 0
