"""The run directory: the one owner of its on-disk layout (paths, markers, loading, verification, resume state).

Every other module reads and writes a run through the functions here; none spells a file name of it::

    RUN/config.json          the RunConfig (+ run_key); a resume with another one is refused
    RUN/manifest.json        provenance: config, seed, package versions, git commit, device, one entry per start
    RUN/real/                the seeded real subset: images.npy (written last), indices.npy, labels.npy, source.json
    RUN/gen_XX/train.npy     the generation's training set, uint8 N×H×W×C (written after its companions:)
              train_sources.npy  0 = real, k = generation k;  train_labels.npy (conditional runs)
              model/         the model as its family saves it (collapse_utils.diffusion.family): for the UNet a
                             diffusers pipeline folder (unet/ + scheduler/ + model_index.json: DDPMPipeline, or
                             CollapsePipeline with collapse_pipeline.py when conditional), for the DiT transformer/ +
                             scheduler/ + family.json; COMPLETE marker inside;
                             sampling.json (steps, guidance scale: collapse_utils.diffusion.pipeline); README.md (model card,
                             with the metrics: written when the generation finishes) and a copy of samples.png
              train_log.json losses, steps, precision, recipe (the model counts only with a whole log)
              ckpt/          training checkpoint while training (removed after)
              sample_parts/  finished sampling batches while sampling (removed after)
              samples.npy    the generation's samples (+ sample_labels.npy)
              samples.png    a grid of the first samples (one row per class for conditional runs)
              metrics.json   that generation's metrics (checked to hold every metric the config asks for)
              heldout/       extra samples of the generation's model drawn after the run for held-out metrics
                             (collapse_utils.loop.heldout): part files with sha256 sidecars and their meta.json
              hashes.json    sha256 of each artifact above, recorded as it is written
              DONE           written last: the generation is finished
    RUN/RESULTS_ONLY.json    only in a weights-free copy for a results bundle (:func:`copy_results`): what was left
                             out (models, checkpoints, held-out samples, tracking files); such a copy loads and
                             plots like the run but cannot resume or sample

Every artifact is written atomically (collapse_utils.core.io), so a reader sees a whole previous or a whole new file,
and its sha256 is recorded in ``hashes.json`` right after; before an artifact is reused (on resume, or as the
next generation's input) or a generation counts as finished, each file is checked against its hash, so damage
that keeps a file's size is found too, and a recorded file that is gone counts as damaged. The record holds
everything a result depends on: the arrays and labels, the weights and every file of the model folder that
defines the model (network and scheduler configs, pipeline index, ``sampling.json``), the training log and
``metrics.json``; ``real/``'s record holds its arrays and ``source.json``. ``DONE`` vouches for the records: it
holds the sha256 of the generation's ``hashes.json``, of ``real/hashes.json`` and of the configuration
(:func:`config_digest`), and its own checksum, so a deleted or edited record is found as damage too, and a folder
whose ``config.json`` is lost still proves which configuration it holds. A damaged artifact is redone by the
step that wrote it; a record that its ``DONE`` does not vouch for is dropped and the generation redone whole.
Reading a run (:func:`load_run`, :func:`verify_generation`) never writes to it. Generations finished before
``DONE`` vouched for a record, with no ``hashes.json``, are checked by headers and sizes only (logged once), and
those whose record predates model configs and metrics being recorded are checked for what it holds.
``model/README.md``, ``model/samples.png`` and ``samples.png`` are documentation, derived from the config and the
artifacts: not hashed, not read by the loop.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core import io as cio, provenance
from ..core.config import RunConfig
from ..diffusion.card import MODEL_CARD, SAMPLES_GRID, model_card, sampling_settings
from .paradigms import Pool, real_images_needed
from ..diffusion.family import folder_family, family_of
from ..core.data import load_dataset

log = logging.getLogger(__name__)

# The UNet family's weights file in a model folder (collapse_utils.diffusion.family.UNetFamily.weights); a folder of
# another family names its own (model_weights).
UNET_WEIGHTS = Path("unet") / "diffusion_pytorch_model.safetensors"


# ---------------------------------------------------------------------- one writer per run directory
class RunBusyError(RuntimeError):
    """Another process is writing this run directory (and the caller asked not to wait)."""


class RunLock:
    """An exclusive OS lock on a run directory, held by the one process that trains, samples or writes it.

    ``flock`` on ``.<run>.lock`` beside the directory (its real path: a symbolic link to it takes the same lock): the kernel releases it when the holder exits, SIGKILL
    included, so a lock is never stale. The file holds the holder's host, pid and start time, named to anyone who
    finds it busy. On network file systems ``flock`` works where the client forwards it to the server (NFS v4, or
    v3 with lockd); where it does not, give each machine its own run store. Readers take no lock: they see only
    finished generations (``DONE`` last, every artifact checked against its hash).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        run_dir = Path(run_dir).resolve()  # one lock per real folder, whatever symbolic link names it
        self.path = run_dir.parent / f".{run_dir.name}.lock"
        self._fh = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def acquire(self, wait: bool = True) -> "RunLock":
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise RunBusyError(f"{self.path.parent / self.path.name[1:-5]} is being written by "
                                       f"{self.holder()}; skipped (it will be reused once finished)") from None
                log.warning("%s is being written by %s; waiting for it", self.path.name[1:-5], self.holder())
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            fh.flush()
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock
            self._fh = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


# ---------------------------------------------------------------------- paths and markers
def gen_dir(run_dir: str | os.PathLike, g: int) -> Path:
    """The folder of generation ``g`` (1-based)."""
    return Path(run_dir) / f"gen_{g:02d}"


def real_dir(run_dir: str | os.PathLike) -> Path:
    """The folder of the run's real images (and of caches computed from them)."""
    return Path(run_dir) / "real"


def tb_dir(run_dir: str | os.PathLike) -> Path:
    """TensorBoard's event files of the run (collapse_utils.loop.tracking); a mirror of the files, never read back.
    wandb, when chosen, keeps its own files in ``<run_dir>/wandb/``."""
    return Path(run_dir) / "tb"


def model_path(gen: Path) -> Path:
    """The generation's diffusers model folder."""
    return gen / "model"


def ckpt_path(gen: Path) -> Path:
    """The training checkpoint folder (present only while the generation trains)."""
    return gen / "ckpt"


def parts_path(gen: Path) -> Path:
    """The folder of finished sampling batches (present only while the generation samples)."""
    return gen / "sample_parts"


def heldout_path(gen: Path) -> Path:
    """Where a generation's held-out samples live (drawn after the run; never read by the loop)."""
    return gen / "heldout"


def model_weights(folder: Path) -> Path:
    """The weights file of the model in ``folder``, relative to it: its family's (``ModelFamily.weights``; a folder
    without a ``family.json`` holds a UNet: UNET_WEIGHTS). Raises CorruptArtifactError for an unreadable record."""
    try:
        return folder_family(folder).weights
    except (ValueError, OSError) as exc:
        raise cio.CorruptArtifactError(f"{folder}: no readable model family record ({exc})") from exc


def model_sha256(gen: Path) -> str:
    """The sha256 of the generation's trained weights: what anything derived from the model is tied to."""
    folder = model_path(gen)
    return cio.file_sha256(folder / model_weights(folder))


def is_done(run_dir: str | os.PathLike, g: int) -> bool:
    """Generation ``g`` has its ``DONE`` marker (finished, not yet verified)."""
    return (gen_dir(run_dir, g) / "DONE").exists()


def is_finished(run_dir: str | os.PathLike, generations: int) -> bool:
    """The run's last generation is marked done."""
    return is_done(run_dir, generations)


def config_digest(cfg: RunConfig) -> str:
    """The sha256 of what a run computes (its key fields, less :data:`RESUMABLE_CHANGES`): a ``DONE`` marker
    records it, so a folder whose ``config.json`` is lost still proves which configuration it holds."""
    import hashlib
    import json

    key = {k: v for k, v in cfg.canonical_key_dict().items() if k not in RESUMABLE_CHANGES}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=cio.json_default).encode()).hexdigest()


def read_done(gen: Path) -> dict[str, Any] | None:
    """The ``DONE`` marker's contents, None when there is none; raises when it is damaged."""
    path = gen / "DONE"
    if not path.exists():
        return None
    done = cio.read_json(path)
    if not isinstance(done, dict) or "finished" not in done or (
            "check" in done and done["check"] != _done_check(done)):
        raise cio.CorruptArtifactError(f"{path} is damaged")
    return done


def _done_check(done: dict[str, Any]) -> str:
    """The marker's own checksum: the sha256 of everything else in it."""
    import hashlib
    import json

    rest = {k: v for k, v in done.items() if k != "check"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _write_done(gen: Path, done: dict[str, Any]) -> None:
    done = {k: v for k, v in done.items() if k != "check"}
    cio.atomic_write_json(gen / "DONE", {**done, "check": _done_check(done)})


def mark_done(gen: Path, cfg: RunConfig | None = None, finished: str | None = None) -> None:
    """Write the ``DONE`` marker, last of a generation's artifacts. It holds the sha256 of the generation's hash
    record (``record``), of the real set's (``real``) and of the configuration (``config``, :func:`config_digest`):
    the chain that makes a deleted or edited record itself detectable; and its own checksum (``check``)."""
    done: dict[str, Any] = {"finished": finished or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                            "record": cio.record_digest(gen)}
    real = cio.record_digest(real_dir(gen.parent))
    if real is not None:
        done["real"] = real
    if cfg is not None:
        done["config"] = config_digest(cfg)
    _write_done(gen, done)


def write_metrics(gen: Path, metrics: dict[str, Any]) -> None:
    """Record a generation's metrics: the one writer of ``metrics.json``, hashed like every artifact. Metrics
    added to a finished generation (collapse_utils.loop.run_metrics) renew its ``DONE`` marker's record hash."""
    vouched = record_vouched(gen)  # a record DONE does not vouch for is never vouched for by renewing DONE
    cio.atomic_write_json(gen / "metrics.json", metrics)
    cio.record_hashes(gen, "metrics.json")
    try:
        done = read_done(gen)
    except cio.CorruptArtifactError:
        return  # a damaged marker stays damaged: the generation is redone
    if done is not None and "record" in done and vouched:
        _write_done(gen, {**done, "record": cio.record_digest(gen)})


def read_metrics(gen: Path) -> dict[str, Any]:
    return cio.read_json(gen / "metrics.json")


# ---------------------------------------------------------------------- content hashes
_LEGACY_LOGGED: set[str] = set()


def _record_present(folder: Path, *names: str) -> None:
    """Record the hashes of those of ``names`` that were written (labels exist only for conditional runs)."""
    cio.record_hashes(folder, *(n for n in names if (folder / n).exists()))


def is_legacy(gen: Path) -> bool:
    """A finished generation made before content hashes were recorded: a ``DONE`` marker that vouches for no record
    (one written since holds the record's sha256) and no ``hashes.json``."""
    if (gen / cio.HASHES).exists():
        return False
    try:
        done = read_done(gen)
    except cio.CorruptArtifactError:
        return False
    return done is not None and "record" not in done


def verify_hashes(gen: Path, *names: str | Path) -> None:
    """Raise :class:`~collapse_utils.core.io.CorruptArtifactError` naming the file unless each of ``names`` matches the
    sha256 recorded when it was written (a file with no record counts as damaged, as does a recorded file that is
    gone). A finished generation made before hashing (:func:`is_legacy`) passes (headers and sizes are checked
    elsewhere)."""
    legacy = is_legacy(gen)
    if legacy and any((gen / n).exists() for n in names) and str(gen.parent) not in _LEGACY_LOGGED:
        _LEGACY_LOGGED.add(str(gen.parent))
        log.info("%s has no content hashes (made by an earlier version); checking headers and sizes only", gen.parent)
    cio.verify_hashes(gen, *names, unrecorded_ok=legacy)


# ---------------------------------------------------------------------- results
class ConfigMismatchError(ValueError):
    """The run directory was started with another configuration."""


@dataclass
class GenerationResult:
    """One finished generation: its folder and metrics; its arrays are read on demand."""

    generation: int
    dir: Path
    metrics: dict[str, Any]
    computed: bool = field(default=False, compare=False)  # computed by this call (not found finished)

    def load(self, name: str) -> np.ndarray:
        return cio.load_npy(self.dir / f"{name}.npy")

    @property
    def train_images(self) -> np.ndarray:
        return self.load("train")

    @property
    def samples(self) -> np.ndarray:
        return self.load("samples")

    @property
    def train_sources(self) -> np.ndarray:
        return self.load("train_sources")

    @property
    def sample_labels(self) -> np.ndarray:
        """The class labels the samples were drawn for (conditional runs)."""
        return self.load("sample_labels")

    def write_metrics(self) -> None:
        """Store :attr:`metrics` (after adding a metric computed later)."""
        write_metrics(self.dir, self.metrics)


@dataclass
class RunResult:
    """A run's configuration and its finished generations, in order."""

    config: RunConfig
    run_dir: Path
    generations: list[GenerationResult] = field(default_factory=list)

    def metrics_table(self) -> list[dict[str, Any]]:
        """One row per generation: the run's identifying fields plus that generation's metrics."""
        c = self.config
        base = dict(run=self.run_dir.name, dataset=c.dataset, n=c.n, paradigm=c.paradigm, selection=c.selection,
                    feature_space=c.feature_space, seed=c.seed, decay=c.decay)
        return [{**base, "generation": g.generation, **g.metrics} for g in self.generations]

    def real_images(self) -> np.ndarray:
        return cio.load_npy(real_dir(self.run_dir) / "images.npy")

    def real_labels(self) -> np.ndarray:
        """The real images' labels (conditional runs)."""
        return cio.load_npy(real_dir(self.run_dir) / "labels.npy")


# Keys ``allow_config_change`` may change in a directory that holds computed generations: more or fewer
# generations extend or shorten the run without changing what the earlier ones were computed from.
RESUMABLE_CHANGES = ("generations",)


def check_config(run_dir: Path, cfg: RunConfig, allow_config_change: bool = False) -> None:
    """Refuse to resume a run directory made with a different configuration, naming the differing keys; with
    ``allow_config_change`` only :data:`RESUMABLE_CHANGES` may differ once generations were computed. Reads only."""
    if is_results_copy(run_dir):
        raise ConfigMismatchError(f"{run_dir} is a weights-free copy from a results bundle ({RESULTS_ONLY}): it "
                                  "holds no models, so it cannot be resumed or extended; use another directory")
    path = run_dir / "config.json"
    proven = proven_configs(run_dir)
    started = any(p.is_dir() and any(p.iterdir()) for p in run_dir.glob("gen_[0-9]*"))
    if path.exists() or proven or started:
        try:
            old = cio.read_json(path)
            if not isinstance(old, dict):
                raise cio.CorruptArtifactError(f"{path} is not a configuration")
            stored = RunConfig.from_dict({k: v for k, v in old.items() if k != "run_key"})
            if old.get("run_key") not in (None, stored.run_key(), *stored.run_key_aliases()):
                raise cio.CorruptArtifactError(f"{path} does not match the run key recorded in it (damaged)")
        except (cio.CorruptArtifactError, FileNotFoundError, ValueError, TypeError) as exc:
            why = str(exc) if path.exists() else f"{path} is missing"
            if proven and config_digest(cfg) in proven:
                log.warning("%s; the finished generations were computed with this configuration: recording it", why)
                return
            if proven:
                raise ConfigMismatchError(
                    f"{why}, and the finished generations of {run_dir} were computed with another configuration: "
                    "use that one (the command that started the run), another output directory, or delete the folder "
                    "to start over") from exc
            if not allow_config_change:
                raise ConfigMismatchError(
                    f"{why}, so it cannot be checked that {run_dir} was started with this configuration. Restore it, "
                    "or pass allow_config_change=True (--allow-config-change) to record the current one."
                ) from exc
            log.warning("%s; recording the current configuration", why)
            return
        new = cfg.key_dict()
        old_key = {k: v for k, v in old.items() if k in new}
        differing = sorted(k for k in set(old_key) | set(new) if old_key.get(k) != new.get(k))
        inconsistent = [k for k in differing if k not in RESUMABLE_CHANGES]
        computed = sorted(int(p.name[4:]) for p in run_dir.glob("gen_[0-9]*") if p.is_dir() and any(p.iterdir()))
        if differing and not allow_config_change:
            lines = [f"{k}: {old_key.get(k)!r} (run) vs {new.get(k)!r} (now)" for k in differing]
            if inconsistent and computed:  # the override would be refused too: do not suggest it
                hint = (f"Use another output directory, or delete {run_dir} to start the run over: generation(s) "
                        f"{computed} were computed with the old values of {', '.join(inconsistent)}, and only "
                        f"{', '.join(RESUMABLE_CHANGES)} can change in place (allow_config_change=True, "
                        "--allow-config-change).")
            else:
                hint = ("Use another output directory, or allow_config_change=True (--allow-config-change) to continue "
                        "with the new value(s).")
            raise ConfigMismatchError(
                f"{run_dir} was started with a different configuration; differing keys:\n  "
                + "\n  ".join(lines) + "\n" + hint
            )
        if inconsistent and computed:
            raise ConfigMismatchError(
                f"--allow-config-change cannot keep {run_dir} consistent: {', '.join(inconsistent)} changed, and "
                f"generation(s) {computed} were computed with the old values. Use another output directory, or delete "
                f"{run_dir} to start the run over (only {', '.join(RESUMABLE_CHANGES)} can change in place).")
        if differing:
            log.warning("continuing %s with changed keys %s", run_dir, differing)


def proven_configs(run_dir: Path) -> set[str]:
    """The configuration digests (:func:`config_digest`) the ``DONE`` markers of ``run_dir``'s generations hold."""
    found: set[str] = set()
    for gen in sorted(Path(run_dir).glob("gen_[0-9]*")):
        try:
            done = read_done(gen)
        except cio.CorruptArtifactError:
            continue
        if done is not None and "config" in done:
            found.add(done["config"])
    return found


def real_anchor(run_dir: Path) -> str | None:
    """The sha256 of ``real/hashes.json`` as the finished generations' ``DONE`` markers recorded it, if any did."""
    for gen in sorted(Path(run_dir).glob("gen_[0-9]*")):
        try:
            done = read_done(gen)
        except cio.CorruptArtifactError:
            continue
        if done is not None and done.get("real"):
            return done["real"]
    return None


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    """Record the run's configuration (and its key) in ``config.json``."""
    cio.atomic_write_json(run_dir / "config.json", cfg.to_dict() | {"run_key": cfg.run_key()})


def read_config(run_dir: Path) -> RunConfig:
    cfg_dict = cio.read_json(Path(run_dir) / "config.json")
    cfg_dict.pop("run_key", None)
    return RunConfig.from_dict(cfg_dict)


def write_manifest(run_dir: Path, cfg: RunConfig, device: torch.device) -> None:
    """Provenance: config, seed, package versions, git commit, device; one entry per (re)start."""
    path = run_dir / "manifest.json"
    manifest = {"sessions": []}
    if path.exists():
        try:  # provenance only: a damaged manifest is started afresh rather than stopping the run
            manifest = cio.read_json(path)
            manifest.setdefault("sessions", [])
        except (cio.CorruptArtifactError, AttributeError) as exc:
            log.warning("%s; starting a new manifest", exc)
            manifest = {"sessions": [], "damaged_manifest_replaced": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    manifest.update(config=cfg.to_dict(), run_key=cfg.run_key(), seed=cfg.seed)
    manifest["sessions"].append(dict(
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), git_commit=provenance.git_commit(), versions=provenance.package_versions(),
        device=provenance.device_description(device),
    ))
    cio.atomic_write_json(path, manifest)


def real_request(cfg: RunConfig) -> dict[str, Any]:
    return dict(dataset=cfg.dataset, n=real_images_needed(cfg), seed=cfg.seed, resolution=cfg.resolution,
                channels=cfg.channels, resize_method=cfg.resize_method, labels=bool(cfg.conditional))


def check_labels(cfg: RunConfig, labels: np.ndarray | None, count: int) -> None:
    if not cfg.conditional:
        return
    if labels is None:
        raise ValueError(f"dataset {cfg.dataset!r} has no labels, which a conditional run needs")
    if len(labels) != count or labels.min() < 0 or labels.max() >= cfg.num_classes:
        raise ValueError(f"dataset {cfg.dataset!r} has labels in [{labels.min()}, {labels.max()}] for {count} images; "
                         f"a conditional run with num_classes={cfg.num_classes} needs one label in [0, {cfg.num_classes}) each")


REAL_FILES = ("images.npy", "indices.npy", "labels.npy")
REAL_RECORDED = (*REAL_FILES, "source.json")  # source.json is recorded since the record is vouched for by DONE


def verify_real_record(run_dir: Path, unrecorded_ok: bool = False) -> None:
    """Raise unless ``real/``'s files match its hash record and the record matches the one the finished
    generations' ``DONE`` markers vouch for (so a deleted or edited record is found too); reads only.
    ``unrecorded_ok``: a real set with no record, that no ``DONE`` vouches for, passes (drawn before hashing)."""
    real = real_dir(run_dir)
    anchor = real_anchor(run_dir)
    if anchor is not None and cio.record_digest(real) != anchor:
        raise cio.CorruptArtifactError(f"{real / cio.HASHES} is missing or not the record the finished generations "
                                       "were computed with")
    hashes = cio.read_hashes(real) or {}
    names = REAL_FILES + (("source.json",) if "source.json" in hashes else ())
    cio.verify_hashes(real, *names, unrecorded_ok=unrecorded_ok and anchor is None)


def verify_real(cfg: RunConfig, run_dir: Path) -> None:
    """Raise unless ``real/`` holds the images drawn for ``cfg``, whole (request, shape, hashes); reads only."""
    real = real_dir(run_dir)
    stored = cio.read_json(real / "source.json")
    if not isinstance(stored, dict) or stored.get("request") != real_request(cfg):
        raise cio.CorruptArtifactError(f"{real} was drawn for another request")
    if cio.check_npy(real / "images.npy", dtype=np.uint8, ndim=4)[0] != real_images_needed(cfg):
        raise cio.CorruptArtifactError(f"{real / 'images.npy'} holds the wrong number of images")
    verify_real_record(run_dir)


def load_real(cfg: RunConfig, run_dir: Path, check: Callable[[np.ndarray], None] | None = None) -> Pool:
    """The run's real images: drawn once (seeded) and stored in ``real/`` so a resume never re-draws them.

    The stored copy is reused only when it was drawn for the same request (dataset, count, seed, resolution,
    channels, resize method, labels) and reads back whole; otherwise the dataset is loaded again.
    ``check(images)`` (the preflight) runs before anything is written.
    """
    real = real_dir(run_dir)
    try:
        stored = cio.read_json(real / "source.json")
        # a folder without any record (drawn by an earlier version) is read whole below instead
        verify_real_record(run_dir, unrecorded_ok=True)
        images = cio.load_npy(real / "images.npy", dtype=np.uint8, ndim=4)
        labels = cio.load_npy(real / "labels.npy", ndim=1) if cfg.conditional else None
        if stored.get("request") == real_request(cfg) and len(images) == real_images_needed(cfg):
            check_labels(cfg, labels, len(images))
            if check is not None:
                check(images)
            if cio.read_hashes(real) is None:  # drawn by an earlier version: vouch for what was just read whole
                _record_present(real, *REAL_RECORDED)
            return Pool(images, np.zeros(len(images), np.int16), labels)
    except (cio.CorruptArtifactError, FileNotFoundError, AttributeError):
        pass
    ds = load_dataset(cfg.dataset, real_images_needed(cfg), seed=cfg.seed, resolution=cfg.resolution,
                      channels=cfg.channels, root=cfg.data_root, resize_method=cfg.resize_method)
    labels = ds.labels if cfg.conditional else None
    check_labels(cfg, labels, len(ds.images))
    if check is not None:
        check(ds.images)
    # images.npy last: its presence means its companions are complete.
    (real / "images.npy").unlink(missing_ok=True)
    (real / cio.HASHES).unlink(missing_ok=True)  # a new record: nothing of an earlier draw is vouched for
    if labels is not None:
        cio.atomic_save_npy(real / "labels.npy", labels.astype(np.int64))
    cio.atomic_save_npy(real / "indices.npy", ds.indices)
    cio.atomic_write_json(real / "source.json", {"name": ds.name, "source": ds.source, "shape": list(ds.images.shape),
                                                     "request": real_request(cfg)})
    cio.atomic_save_npy(real / "images.npy", ds.images)
    _record_present(real, *REAL_RECORDED)
    return Pool(ds.images, np.zeros(len(ds.images), np.int16), labels)


# ---------------------------------------------------------------------- a generation's artifacts
TRAIN_FILES = ("train.npy", "train_sources.npy", "train_labels.npy")
SAMPLE_FILES = ("samples.npy", "sample_labels.npy")


def load_training_set(gen: Path) -> Pool:
    """The generation's training set with its sources (and labels); raises if missing or damaged."""
    verify_hashes(gen, *TRAIN_FILES)
    return load_pool(gen, "train", "train_labels")


def load_samples(gen: Path, g: int) -> Pool:
    """Generation ``g``'s samples as a pool (source ``g``; with labels for conditional runs)."""
    verify_hashes(gen, *SAMPLE_FILES)
    return load_pool(gen, "samples", "sample_labels", sources_value=g)


def save_samples(gen: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    """The assembled samples (labels first: ``samples.npy`` existing means its companion is whole)."""
    if labels is not None:
        cio.atomic_save_npy(gen / "sample_labels.npy", labels)
    cio.atomic_save_npy(gen / "samples.npy", images)
    _record_present(gen, *SAMPLE_FILES)


def write_train_log(gen: Path, losses: list[float], mixed_precision: str, recipe: str, steps: int) -> None:
    """The training log; written before the model, which counts only with a whole log beside it."""
    cio.atomic_write_json(gen / "train_log.json", {"losses": losses, "mixed_precision": mixed_precision,
                                                   "recipe": recipe, "steps": steps})
    cio.record_hashes(gen, "train_log.json")


def read_train_log(gen: Path) -> dict[str, Any] | None:
    path = gen / "train_log.json"
    if not path.exists():
        return None
    verify_hashes(gen, "train_log.json")
    return cio.read_json(path)


def clean_interrupted(gen: Path) -> None:
    """After a kill: put a half-replaced checkpoint or model back and drop temporary files."""
    cio.restore_replaced_dir(ckpt_path(gen))
    cio.restore_replaced_dir(model_path(gen))
    cio.remove_stale_tmp(gen)
    if not (model_path(gen) / "COMPLETE").exists():
        verify_checkpoint(ckpt_path(gen))


def load_pool(gen: Path, prefix: str, labels_name: str, sources_value: int | None = None) -> Pool:
    """Images with sources and labels, checked to agree in length."""
    images = cio.load_npy(gen / f"{prefix}.npy", dtype=np.uint8, ndim=4)
    if sources_value is None:
        sources = cio.load_npy(gen / "train_sources.npy")
    else:
        sources = np.full(len(images), sources_value, np.int16)
    labels = cio.load_npy(gen / f"{labels_name}.npy") if (gen / f"{labels_name}.npy").exists() else None
    if len(sources) != len(images) or (labels is not None and len(labels) != len(images)):
        raise cio.CorruptArtifactError(f"{gen}: {prefix} arrays disagree in length")
    return Pool(images, sources, labels)


def save_training_set(gen: Path, pool: Pool) -> None:
    """Images last: ``train.npy`` existing means its companions are complete too."""
    cio.atomic_save_npy(gen / "train_sources.npy", pool.sources.astype(np.int16))
    if pool.labels is not None:
        cio.atomic_save_npy(gen / "train_labels.npy", pool.labels.astype(np.int64))
    cio.atomic_save_npy(gen / "train.npy", pool.images)
    _record_present(gen, *TRAIN_FILES)


# Model files that are documentation, written when the generation finishes: neither hashed nor read by the loop.
MODEL_DOCS = ("README.md", "samples.png")


def model_files(path: Path) -> list[str]:
    """The files of the model folder that the model is (weights, network and scheduler configs, pipeline index,
    sampling settings), relative to the generation folder: what its hash record holds."""
    return sorted(Path(path.name, p.relative_to(path)).as_posix() for p in path.rglob("*")
                  if p.is_file() and p.name not in MODEL_DOCS and p.name != "COMPLETE")


def record_model_files(gen: Path) -> None:
    """Record the sha256 of every file of the model just saved (configs included, not only the weights)."""
    cio.record_hashes(gen, *model_files(model_path(gen)))


def check_model_files(path: Path) -> None:
    """Raise :class:`CorruptArtifactError` unless the model and its training log are complete and whole
    (weights, configs and log against their recorded hashes, no recorded file missing); reads only."""
    if not (path / "COMPLETE").exists():
        raise cio.CorruptArtifactError(f"{path} is missing or incomplete")
    weights = model_weights(path)
    cio.check_safetensors(path / weights)
    gen = path.parent
    names = [Path(path.name) / weights, "train_log.json"]
    if not is_legacy(gen):
        hashes = cio.read_hashes(gen) or {}
        prefix = f"{path.name}/"
        recorded = {k for k in hashes if k.startswith(prefix)}
        # every file of the model, unless the generation finished before its configs were recorded
        names += sorted((set(model_files(path)) if _vouched(gen) else set()) | recorded)
    verify_hashes(gen, *names)
    train_log = cio.read_json(path.parent / "train_log.json")
    if not isinstance(train_log, dict) or len(train_log.get("losses", ())) != train_log.get("steps"):
        raise cio.CorruptArtifactError(f"{path.parent / 'train_log.json'} is incomplete")


def _vouched(gen: Path) -> bool:
    """The generation's ``DONE`` marker vouches for its record (written since the record holds every file)."""
    try:
        done = read_done(gen)
    except cio.CorruptArtifactError:
        return True
    return done is None or "record" in done


def load_model(path: Path, family: str | None = None):
    """The generation's trained model (of its folder's family: collapse_utils.diffusion.family), or None when it must
    be (re)trained: missing, truncated, unreadable, or (with ``family``) of another family than the run's."""
    try:
        check_model_files(path)
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        if path.exists():
            log.warning("%s; retraining", exc)
        return None
    try:
        fam = folder_family(path)
        if family is not None and fam.name != family:
            log.warning("model in %s is of family %r, not the run's %r; retraining", path, fam.name, family)
            return None
        return fam.load(path)
    except Exception as exc:  # damaged weights: retrain rather than trust them
        log.warning("model in %s unreadable (%s); retraining", path, exc)
        return None


def verify_checkpoint(path: Path) -> None:
    """Remove a training checkpoint that would not load whole (training then starts at step 0).

    A file that fails half-way through ``load_state`` would leave the model restored but not the step counter;
    checking the whole checkpoint first rules that out: its file list is recorded when it is written
    (``hashes.json``), and a missing, unlisted or changed file discards all of it before anything is loaded.
    """
    if not path.exists():
        return
    try:
        if not (path / "COMPLETE").exists():
            raise cio.CorruptArtifactError("no COMPLETE marker")
        # all or nothing: the file list recorded when it was written, every file present and matching, nothing else
        cio.verify_record(path, skip=("COMPLETE",))
        for f in sorted(path.iterdir()):
            if f.suffix == ".safetensors":
                cio.check_safetensors(f)
            elif f.is_file() and f.name not in ("COMPLETE", cio.HASHES):
                torch.load(f, map_location="cpu", weights_only=False)
    except Exception as exc:  # any unreadable part: the checkpoint is worth nothing
        log.warning("checkpoint %s is damaged (%s); training this generation from step 0", path, exc)
        shutil.rmtree(path, ignore_errors=True)


def save_model(model, scheduler, path: Path, cfg: RunConfig | None = None, generation: int | None = None) -> None:
    """Save the generation's model through its family (collapse_utils.diffusion.family, ``ModelFamily.save``) into a
    fresh folder, mark it ``COMPLETE`` and move it into place whole; then record the sha256 of every file the model
    is (weights, network and scheduler configs, sampling settings: :func:`model_files`). A UNet's folder is a diffusers pipeline folder (unet/ + scheduler/ + model_index.json: diffusers'
    ``DDPMPipeline`` when unconditional, ``CollapsePipeline`` with ``collapse_pipeline.py`` when conditional), so
    ``DiffusionPipeline.from_pretrained`` loads either. With the run's ``cfg`` and ``generation`` also its sampling
    settings (``sampling.json``). The model card is written when the generation is finished (:func:`write_model_card`)."""
    family = family_of(model)
    tmp = cio.fresh_tmp_dir(path.parent, path.name)
    family.save(model, scheduler, tmp, sampling_settings(cfg, generation) if cfg is not None and generation is not None
                else None)
    (tmp / "COMPLETE").write_text("ok\n")
    cio.atomic_replace_dir(tmp, path)
    record_model_files(path.parent)


def model_snippet_path(run_dir: Path, generation: int) -> tuple[str, str]:
    """The model folder as the snippet of its card loads it, and where that path starts: the run directory as it
    was named (a relative ``--out runs/try`` gives ``runs/try/gen_01/model``, from the folder the run was started
    in); an absolute one relative to the working directory when it lies inside it, else relative to the folder
    that holds the run (``try/gen_01/model``). Never a machine's absolute path."""
    run_dir = Path(run_dir)
    rel, base = run_dir, "the folder the run was started in"
    if run_dir.is_absolute():
        try:
            rel = run_dir.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            rel, base = Path(run_dir.name), "the folder that holds the run directory"
    return (rel / gen_dir(".", generation).name / "model").as_posix(), base


def write_model_card(run_dir: Path, cfg: RunConfig, generation: int, metrics: dict[str, Any]) -> None:
    """Write generation ``generation``'s model card (``model/README.md``) with its metrics, and copy its sample grid
    beside it (``model/samples.png``), so the model folder is complete on its own (uploaded to the Hub, say).

    The loop calls this once the generation's ``metrics.json`` is written and before its ``DONE`` marker: a
    finished generation has its card, and a kill before ``DONE`` redoes the metrics and the card. Both files are
    documentation, like ``sampling.json``: not hashed, never read by the loop, so a resumed run still verifies.
    """
    gen = gen_dir(run_dir, generation)
    folder = model_path(gen)
    if (gen / SAMPLES_GRID).exists():
        cio.atomic_write_bytes(folder / SAMPLES_GRID, (gen / SAMPLES_GRID).read_bytes())
    card = model_card(cfg, generation, metrics, *model_snippet_path(run_dir, generation))
    cio.atomic_write_bytes(folder / MODEL_CARD, str(card).encode())


GRID_COLUMNS = 8
GRID_TILE = 32  # small images are enlarged (nearest neighbour) to at least this many pixels a side


def samples_grid(images: np.ndarray, labels: np.ndarray | None, num_classes: int | None = None,
                 columns: int = GRID_COLUMNS) -> np.ndarray:
    """uint8 H×W×C grid of the first samples: ``columns`` × ``columns`` of them, or with ``labels`` one row per
    class (the first ``columns`` samples of each), 1-pixel gaps; small images enlarged by an integer factor."""
    images = np.asarray(images)
    if labels is None:
        rows = [images[i:i + columns] for i in range(0, min(len(images), columns * columns), columns)]
    else:
        labels = np.asarray(labels)
        classes = range(num_classes) if num_classes else sorted(set(labels.tolist()))
        rows = [images[labels == c][:columns] for c in classes]
    h, w, ch = images.shape[1:]
    scale = max(1, -(-GRID_TILE // max(h, w)))
    th, tw, pad = h * scale, w * scale, 1
    grid = np.full((len(rows) * (th + pad) + pad, columns * (tw + pad) + pad, ch), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            tile = img.repeat(scale, axis=0).repeat(scale, axis=1)
            grid[pad + r * (th + pad):pad + r * (th + pad) + th, pad + c * (tw + pad):pad + c * (tw + pad) + tw] = tile
    return grid


def save_samples_grid(gen: Path, images: np.ndarray, labels: np.ndarray | None, num_classes: int | None = None) -> None:
    """Write ``samples.png``, a grid of the generation's first samples (documentation, not hashed)."""
    import io as _io

    from PIL import Image

    grid = samples_grid(images, labels, num_classes)
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buf = _io.BytesIO()
    img.save(buf, format="PNG")
    cio.atomic_write_bytes(gen / SAMPLES_GRID, buf.getvalue())


def ensure_samples_grid(gen: Path, pool: Pool, num_classes: int | None = None) -> None:
    """``samples.png`` for samples already saved, unless it is there (a resumed generation gets it too)."""
    if not (gen / SAMPLES_GRID).exists():
        save_samples_grid(gen, pool.images, pool.labels, num_classes)


def prepare_parts_dir(parts: Path, meta: dict[str, Any]) -> None:
    """Keep ``parts`` only if its part files were drawn under ``meta``; else start it afresh."""
    try:
        same = cio.read_json(parts / "meta.json") == meta
    except (cio.CorruptArtifactError, FileNotFoundError):
        same = False
    if not same:
        if any(parts.glob("part_*.npy")):
            log.warning("sample parts in %s were drawn with other settings; sampling them again", parts)
        shutil.rmtree(parts, ignore_errors=True)
        parts.mkdir(parents=True, exist_ok=True)
        cio.atomic_write_json(parts / "meta.json", meta)


def record_vouched(gen: Path) -> bool:
    """The generation's hash record is the one its ``DONE`` marker vouches for (or the marker predates that)."""
    try:
        done = read_done(gen)
    except cio.CorruptArtifactError:
        return False
    return done is None or "record" not in done or done["record"] == cio.record_digest(gen)


def verify_generation(run_dir: Path, g: int, metrics: tuple[str, ...] | list[str] = (),
                      cfg: RunConfig | None = None) -> tuple[GenerationResult | None, str | None]:
    """``(generation, None)`` if ``g`` is marked done and whole, else ``(None, why)``; reads only.

    Whole: the ``DONE`` marker vouches for the generation's hash record (and, with ``cfg``, for that
    configuration), every artifact matches its recorded sha256 (headers and lengths agree too; no recorded file
    is missing), the model (weights and configs) and its log are complete, and ``metrics.json`` is a record
    holding each name in ``metrics`` (the config's metrics).
    """
    gen = gen_dir(run_dir, g)
    if not (gen / "DONE").exists():
        return None, "not finished"
    try:
        done = read_done(gen)
        if "record" in done and done["record"] != cio.record_digest(gen):
            raise cio.CorruptArtifactError(f"{gen / cio.HASHES} is missing or not the record {gen / 'DONE'} vouches "
                                           "for")
        if cfg is not None and "config" in done and done["config"] != config_digest(cfg):
            raise cio.CorruptArtifactError(f"{gen / 'DONE'} was written for another configuration")
        record = read_metrics(gen)
        if not isinstance(record, dict):
            raise cio.CorruptArtifactError(f"{gen / 'metrics.json'} is not a metrics record")
        missing = [m for m in metrics if m not in record]
        if missing:
            raise cio.CorruptArtifactError(f"{gen / 'metrics.json'} lacks the metrics {missing} the run asks for")
        for prefix, companions in (("train", ("train_sources", "train_labels")), ("samples", ("sample_labels",))):
            count = cio.check_npy(gen / f"{prefix}.npy", dtype=np.uint8, ndim=4)[0]
            for name in companions:
                path = gen / f"{name}.npy"
                if (path.exists() or name == "train_sources") and cio.check_npy(path, ndim=1)[0] != count:
                    raise cio.CorruptArtifactError(f"{path} does not match {prefix}.npy in length")
        # metrics.json is recorded since DONE vouches for the record; an older generation's only where recorded
        metrics_recorded = "record" in done or "metrics.json" in (cio.read_hashes(gen) or {})
        verify_hashes(gen, *TRAIN_FILES, *SAMPLE_FILES, *(("metrics.json",) if metrics_recorded else ()))
        if not is_results_copy(run_dir):
            check_model_files(model_path(gen))
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        return None, str(exc)
    return GenerationResult(g, gen, record), None


def unmark_done(run_dir: Path, g: int) -> None:
    """Remove generation ``g``'s ``DONE`` marker, so the loop redoes what is damaged or missing. A hash record
    its marker does not vouch for is dropped with it: nothing it lists is trusted, the whole generation is redone."""
    gen = gen_dir(run_dir, g)
    if not record_vouched(gen):
        (gen / cio.HASHES).unlink(missing_ok=True)
    (gen / "DONE").unlink(missing_ok=True)


def is_legacy_real(run_dir: Path) -> bool:
    """``real/`` was drawn before it was recorded: no record, and no ``DONE`` marker vouches for one."""
    return cio.read_hashes(real_dir(run_dir)) is None and real_anchor(run_dir) is None


def load_run(run_dir: str | os.PathLike) -> RunResult:
    """Read a run directory's finished (and whole) generations, in order up to the first that is not; computes and
    writes nothing. Damaged real images (against their record) leave no generation usable."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir)
    result = RunResult(cfg, run_dir)
    try:
        if not is_legacy_real(run_dir):
            verify_real(cfg, run_dir)
    except (cio.CorruptArtifactError, FileNotFoundError) as exc:
        log.warning("%s cannot be used: its real images are damaged (%s)", run_dir, exc)
        return result
    for g in range(1, cfg.generations + 1):
        done, why = verify_generation(run_dir, g, cfg.metrics, cfg)
        if done is None:
            if why != "not finished":
                log.warning("generation %d of %s cannot be used: %s", g, run_dir, why)
            break
        result.generations.append(done)
    return result


# ---------------------------------------------------------------------- weights-free copies (results bundles)
RESULTS_ONLY = "RESULTS_ONLY.json"
# What a weights-free copy keeps of each finished generation: its training set and samples with their companions,
# the metrics, the training log (loss curve) and the hash record; and of the run its config, manifest and real set.
_RESULT_GEN_FILES = (*TRAIN_FILES, *SAMPLE_FILES, "metrics.json", "train_log.json", "DONE")


def is_results_copy(run_dir: str | os.PathLike) -> bool:
    """The run directory is a weights-free copy made by :func:`copy_results` (no model to load or resume)."""
    return (Path(run_dir) / RESULTS_ONLY).exists()


def copy_results(run_dir: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy a finished run without its models: everything a figure or a claim reads, nothing that is large.

    Kept: ``config.json``, ``manifest.json``, ``real/`` (images, indices, labels, source and cached reference
    values) and, per finished generation, the training set, the samples, their labels and sources,
    ``metrics.json`` (with every metric computed so far, held-out ones included), ``train_log.json``, ``DONE`` and
    ``hashes.json`` reduced to the files kept, so :func:`load_run` verifies each array against its recorded
    sha256 as in the full run. Left out: model weights, checkpoints, held-out samples, tracking files and the
    sample grids (documentation). ``RESULTS_ONLY.json`` marks the copy. Raises ValueError when the run has a
    damaged or unfinished generation (a copy holds only verified generations, all of them).
    """
    src, dest = Path(run_dir), Path(dest)
    run = load_run(src)
    if len(run.generations) != run.config.generations:
        raise ValueError(f"{src} is not finished: {len(run.generations)} of {run.config.generations} generations "
                         "verified")
    if dest.exists():
        shutil.rmtree(dest)
    tmp = cio.fresh_tmp_dir(dest.parent, dest.name)
    for name in ("config.json", "manifest.json"):
        shutil.copy2(src / name, tmp / name)
    real = real_dir(src)
    if real.exists():
        (tmp / real.name).mkdir()
        for f in sorted(real.iterdir()):
            if f.is_file():
                shutil.copy2(f, tmp / real.name / f.name)
    for g in run.generations:
        out = tmp / g.dir.name
        out.mkdir()
        kept = [n for n in _RESULT_GEN_FILES if (g.dir / n).exists()]
        for name in kept:
            shutil.copy2(g.dir / name, out / name)
        hashes = cio.read_hashes(g.dir) or {}
        cio.atomic_write_json(out / cio.HASHES, {k: v for k, v in hashes.items() if k in kept})
        done = read_done(g.dir)
        if "record" in done:  # the copy's marker vouches for the copy's reduced record
            _write_done(out, {**done, "record": cio.record_digest(out)})
    cio.atomic_write_json(tmp / RESULTS_ONLY, {
        "what": "a weights-free copy of a finished run for a results bundle: figures and claims read it; it cannot "
                "resume, sample or draw held-out samples",
        "left_out": ["gen_XX/model/ (weights, model card)", "gen_XX/heldout/ (held-out samples)",
                     "gen_XX/samples.png", "tb/, wandb/ (tracking)"],
        "run_key": run.config.run_key(),
    })
    tmp.rename(dest)
    return dest
