"""The LeNet feature network: a small MNIST digit classifier whose penultimate layer is the feature space ``lenet``.

Inception (FID) and DINOv2 were trained on natural photographs; on 8×8 or 28×28 grey digits their features mostly
measure how unlike a photograph the images are, so a Fréchet distance there needs many samples to separate two
digit sets. A network trained on the digits themselves has features that follow what varies between digits (the
role of the MNIST classifiers behind the digit FIDs of the generative-model literature; PAPER.md §3.3 gives the
Fréchet distance itself).

Architecture (LeNet-5-like): conv 1→6 5×5 (padding 2) – ReLU – max-pool 2 – conv 6→16 5×5 – ReLU –
max-pool 2 – fc 400→120 – ReLU – fc 120→84 – ReLU – fc 84→10. The features are the 84 outputs of the second fully
connected layer *before* its ReLU (float32, N×84).

Input: uint8 grey images N×H×W×1 (or N×H×W) at any resolution. They are resized to 28×28 with the package's own
:func:`collapse_utils.core.data.resize_images` (bilinear: PIL's, antialiased when shrinking), scaled to [0, 1] and
normalised with MNIST's mean 0.1307 and standard deviation 0.3081. Colour images are refused: this is a space for
grey digits.

The weights are bundled as ``data/lenet_mnist.pt`` (checked against ``data/SHA256SUMS`` on load) and were trained
by ``data/build_lenet.py`` on the 60,000 MNIST training images, half of each batch degraded to 8×8 and back, so that
the package's low-resolution digits are in its training distribution. Nothing is ever downloaded.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..core.data import DatasetUnavailableError, resize_images, verified_bundled_path
from ..core.devices import resolve_device

LENET_FILE = "lenet_mnist.pt"
LENET_BUILD_SCRIPT = "build_lenet.py"
LENET_RESOLUTION = 28
LENET_FEATURE_DIM = 84
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class LeNet(nn.Module):
    """LeNet-5-like digit classifier; :meth:`features` is the 84-d output of ``fc2`` before its ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, LENET_FEATURE_DIM)
        self.fc3 = nn.Linear(LENET_FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.features(x)))


def state_dict_for_saving(model: nn.Module) -> "OrderedDict[str, torch.Tensor]":
    """The weights as an ordered dict of contiguous CPU tensors: what ``torch.save`` writes as the bundled file."""
    return OrderedDict((k, v.detach().cpu().contiguous().clone()) for k, v in model.state_dict().items())


def normalize(images28: np.ndarray) -> torch.Tensor:
    """uint8 N×28×28(×1) grey images → the network's float32 N×1×28×28 input: x/255, then (x − mean) / std."""
    x = torch.from_numpy(np.ascontiguousarray(images28).reshape(len(images28), 1, LENET_RESOLUTION, LENET_RESOLUTION))
    return (x.float() / 255.0 - MNIST_MEAN) / MNIST_STD


def prepare_images(images: np.ndarray) -> np.ndarray:
    """Check grey uint8 images and resize them to 28×28 (bilinear, :func:`resize_images`): uint8 N×28×28×1."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be N x H x W x 1 (or N x H x W); got shape {images.shape}")
    if images.shape[-1] == 3:
        raise ValueError("the 'lenet' feature space is for grayscale digit images (an MNIST classifier); got RGB "
                         f"images of shape {images.shape}. Use 'dinov2' or 'inception' for colour images")
    if images.dtype != np.uint8:
        raise ValueError(f"network feature spaces need uint8 images (0-255); got dtype {images.dtype}")
    if len(images) == 0:
        raise ValueError(f"images is empty (shape {images.shape})")
    return resize_images(images, LENET_RESOLUTION, "bilinear")


@functools.lru_cache(maxsize=4)
def _load(device_str: str) -> LeNet:
    try:
        path = verified_bundled_path(LENET_FILE, script=LENET_BUILD_SCRIPT)
    except DatasetUnavailableError as exc:
        raise type(exc)(f"the LeNet feature network's weights cannot be used: {exc}") from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = LeNet()
        model.load_state_dict(state)
    except Exception as exc:  # matching checksum but unreadable: SHA256SUMS was updated with a bad file
        raise DatasetUnavailableError(f"{path} matches its checksum but does not load as the LeNet weights "
                                      f"({type(exc).__name__}: {exc}); rebuild it with "
                                      f"`python data/{LENET_BUILD_SCRIPT}`") from exc
    return model.eval().to(torch.device(device_str))


def load_lenet(device: str | torch.device | None = None) -> LeNet:
    """The bundled LeNet on ``device`` in eval mode (loaded once per device, checksum-verified)."""
    return _load(str(resolve_device(device)))


def _run(images: np.ndarray, head, device, batch_size: int) -> np.ndarray:
    images = prepare_images(images)
    dev = resolve_device(device)
    model = load_lenet(dev)
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            out.append(head(model, normalize(images[start:start + batch_size]).to(dev)).float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def lenet_features(images: np.ndarray, *, device: str | torch.device | None = None,
                   batch_size: int = 1024) -> np.ndarray:
    """The ``lenet`` features of grey uint8 images: fc2's 84 outputs before the ReLU, float32 (N, 84)."""
    return _run(images, LeNet.features, device, batch_size)


def lenet_logits(images: np.ndarray, *, device: str | torch.device | None = None,
                 batch_size: int = 1024) -> np.ndarray:
    """The network's 10 class scores (digits 0-9) of grey uint8 images, float32 (N, 10); argmax is its guess."""
    return _run(images, LeNet.forward, device, batch_size)
