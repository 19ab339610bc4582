"""Selection methods as plug-ins: one registry entry holds everything a method is (PAPER.md §4).

A selection method picks n images of a candidate pool (PAPER.md §4: the entropy-raising Greedy Selection,
Algorithm 1, and Threshold Decay Filter, Algorithm 2; the baselines none and random). Its entry,
:class:`SelectionMethod`, holds

* its function (or a ``"module:function"`` path resolved on first use, so this module stays free of torch);
* its parameters (:class:`Param`: name, default, help text, and for the built-ins the RunConfig field that
  holds the value; a plug-in's come from ``RunConfig.selection_params``);
* its default parameters per feature space (and pool kind, see :data:`~collapse_utils.core.vocab.POOL_KINDS`):
  the Threshold Decay Filter's starting threshold and decay of the PAPER.md §4.2 table;
* the feature spaces it supports, checked before a run trains anything (the filter has no defaults for the
  LeNet space, so it does not support it);
* its display: long label (legends), short label (claims, arm names) and colour.

Every consumer reads it: the configuration's validation and implied defaults, the paradigms' dispatch, the
preflight, and the figures', demo's and claims' labels and colours.

**A method of one's own** is named by import path, ``selection="mypkg.mymod:kcenter"``. The run store's
worker processes (started with ``spawn``), sweep tasks and notebook kernels import it from that path, so it
must live in a module file, not in a notebook cell (multiprocessing gives spawned workers the parent's
``sys.path``; the folder of a resolved plug-in is also put on ``PYTHONPATH`` for subprocesses). The function::

    def kcenter(features, n, *, seed=0, **params) -> np.ndarray

gets the pool's features (an (N, D) float array in the run's feature space; pixel space: 0-255 values
flattened), the count ``n`` and a seed derived from the run's seed and generation; it returns ``n`` distinct
int64 indices into ``features``, in the order picked. Declare what it takes with :func:`selection_method`::

    @selection_method(params={"k": (3, "neighbours per point")}, spaces=("pixel",), label="k-centre")
    def kcenter(features, n, *, seed=0, k=3): ...

Without the decorator the spec is inferred: parameters are the function's keyword parameters with defaults
(besides ``seed`` and ``device``), every feature space is supported, the label is the function's name. The
sha256 of the module file enters the run key of a plug-in run (built-in keys are untouched), so editing the
method never reuses runs made with the old code; helpers the method imports from other files are not hashed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .vocab import FEATURE_SPACES, POOL_KINDS, SELECTION_METHODS

# The method that selects nothing (the vanilla paradigms): the training set is the first n candidates.
NO_SELECTION = "none"
# Colours given to methods that name none, in order of registration (the built-ins take blue, green, red, grey).
PLUGIN_COLOURS = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
# "package.module:function" (the function may be a dotted attribute path).
_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_RESERVED = ("features", "n", "seed", "device")  # a function's arguments that are not method parameters


@dataclass(frozen=True)
class Param:
    """One parameter of a selection method.

    ``field``: the RunConfig field holding its value (the built-ins', whose fields predate the registry and
    keep the run keys); ``None``: the value comes from ``RunConfig.selection_params``. ``runtime``: given by
    whoever calls :func:`collapse_utils.loop.selection.select` (the torch device), never by a configuration.
    """

    name: str
    default: Any = None
    help: str = ""
    field: str | None = None
    runtime: bool = False


@dataclass(frozen=True)
class SelectionMethod:
    """Everything one selection method is (see the module docstring)."""

    name: str
    function: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    # {feature space: {param: value}} or {(feature space, pool kind): {param: value}} (the latter wins)
    defaults: Mapping[Any, Mapping[str, Any]] = field(default_factory=dict)
    spaces: tuple[str, ...] = FEATURE_SPACES
    label: str = ""
    short: str = ""
    colour: str | None = None
    builtin: bool = False

    def resolve(self) -> Callable[..., Any]:
        """The function (a ``"module:function"`` reference is imported now)."""
        return _import_path(self.function)[0] if isinstance(self.function, str) else self.function

    @property
    def param_names(self) -> set[str]:
        return {p.name for p in self.params}

    def supports(self, space: str) -> bool:
        return space in self.spaces

    def defaults_for(self, space: str, pool_kind: str) -> dict[str, Any]:
        """The default parameters in ``space`` for a pool of ``pool_kind`` (``{}`` where it has none)."""
        if (space, pool_kind) in self.defaults:
            return dict(self.defaults[(space, pool_kind)])
        return dict(self.defaults.get(space, {}))

    def config_params(self, cfg: Any, pool_kind: str) -> dict[str, Any]:
        """The keyword arguments the loop passes for ``cfg`` (every non-runtime parameter): a built-in's field
        when set, else the default of the feature space and pool kind, else the parameter's own default; a
        plug-in's ``selection_params`` entry, else the same defaults."""
        table = self.defaults_for(cfg.feature_space, pool_kind)
        params: dict[str, Any] = {}
        for p in self.params:
            if p.runtime:
                continue
            given = getattr(cfg, p.field) if p.field else (cfg.selection_params or {}).get(p.name)
            params[p.name] = given if given is not None else table.get(p.name, p.default)
        return params

    def implied_fields(self, space: str, pool_kind: str) -> dict[str, Any]:
        """RunConfig fields whose ``None`` stands for the default of ``space`` and ``pool_kind``."""
        table = self.defaults_for(space, pool_kind) if self.supports(space) else {}
        return {p.field: table[p.name] for p in self.params if p.field and p.name in table}

    def source_file(self) -> Path | None:
        """The file that defines a plug-in's function (``None`` for the built-ins)."""
        if self.builtin:
            return None
        fn = self.resolve()
        module = sys.modules.get(getattr(fn, "__module__", ""), None)
        path = getattr(module, "__file__", None) or inspect.getsourcefile(fn)
        if not path:
            raise ValueError(f"selection {self.name!r}: cannot find the source file of {fn!r}; define it in a module file")
        return Path(path)

    def source_digest(self) -> str | None:
        """sha256 of :meth:`source_file` (``None`` for the built-ins): part of a plug-in run's key."""
        path = self.source_file()
        return None if path is None else _file_digest(path)

    def help_line(self) -> str:
        params = ", ".join(f"{p.name}={p.default!r}" for p in self.params if not p.runtime)
        spaces = "every feature space" if set(self.spaces) == set(FEATURE_SPACES) else "/".join(self.spaces)
        return f"{self.name} ({self.label}{'; ' + params if params else ''}; {spaces})"


_REGISTRY: dict[str, SelectionMethod] = {}
_RESOLVED: dict[str, SelectionMethod] = {}  # plug-ins named "module:function", as first resolved in this process


def register(method: SelectionMethod, *, replace: bool = False) -> SelectionMethod:
    """Add ``method`` under its name (in this process only: a spawned worker knows a plug-in by its
    ``"module:function"`` path, which needs no registration). A method without a colour gets the next one of
    :data:`PLUGIN_COLOURS`; labels default to the name."""
    if method.name in _REGISTRY and not replace:
        raise ValueError(f"a selection method named {method.name!r} is already registered")
    if method.name in SELECTION_METHODS and not method.builtin:
        raise ValueError(f"{method.name!r} is a built-in selection method")
    if ":" in method.name and not _PATH.match(method.name):
        raise ValueError(f"selection method name {method.name!r}: a name with ':' must be 'module:function'")
    unknown = [s for s in method.spaces if s not in FEATURE_SPACES]
    if unknown:
        raise ValueError(f"selection {method.name!r}: unknown feature space(s) {unknown}; valid: {FEATURE_SPACES}")
    _REGISTRY[method.name] = _completed(method)
    return _REGISTRY[method.name]


def _completed(method: SelectionMethod) -> SelectionMethod:
    """``method`` with its labels and colour filled in: a colour none of the other methods has (a reloaded
    plug-in's own included)."""
    colour = method.colour
    if colour is None:
        used = {m.colour for m in [*_REGISTRY.values(), *_RESOLVED.values()] if m.name != method.name}
        colour = next((c for c in PLUGIN_COLOURS if c not in used), PLUGIN_COLOURS[len(_REGISTRY) % len(PLUGIN_COLOURS)])
    return dataclasses.replace(method, colour=colour, label=method.label or method.name,
                               short=method.short or method.label or method.name)


register_selection_method = register  # the name in the package's public API


def method_names() -> tuple[str, ...]:
    """The registered methods' names, in legend order (vanilla, the paper's two, random, then others)."""
    return tuple(_REGISTRY)


def registered() -> tuple[SelectionMethod, ...]:
    return tuple(_REGISTRY.values())


def is_plugin_path(name: str) -> bool:
    return isinstance(name, str) and ":" in name and name not in _REGISTRY


def is_builtin(name: str) -> bool:
    return name in _REGISTRY and _REGISTRY[name].builtin


def get_method(name: str) -> SelectionMethod:
    """The method of a configuration's ``selection``: a registered name or a ``"module:function"`` path
    (imported now; a changed source file is reloaded). ValueError with the valid choices otherwise."""
    if not isinstance(name, str):
        raise ValueError(f"selection must be a method name, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" not in name:
        raise ValueError(f"unknown selection method {name!r}; choose one of {', '.join(method_names())}, or name "
                         "your own function as 'module:function' (see collapse_utils.core.methods)")
    fn, _module = _import_path(name)
    cached = _RESOLVED.get(name)
    if cached is None or cached.function is not fn:  # first use, or the module was reloaded
        cached = _completed(_from_function(name, fn, getattr(fn, "__selection_method__", None) or {}))
        _RESOLVED[name] = cached
    return cached


def check_selection(cfg: Any) -> SelectionMethod:
    """The method of ``cfg`` if it supports ``cfg.feature_space``, else a ValueError naming both and the spaces it
    supports (the preflight's check, before anything is trained or written: the Threshold Decay Filter has no
    default threshold in the LeNet space, PAPER.md §4.2)."""
    method = get_method(cfg.selection)
    if not method.supports(cfg.feature_space):
        raise ValueError(f"selection {cfg.selection!r} does not support feature_space {cfg.feature_space!r}; it "
                         f"supports {', '.join(method.spaces)} (choose another feature_space / --feature-space)")
    return method


def describe_methods() -> str:
    """One line per registered method, for ``run --help``."""
    return "; ".join(m.help_line() for m in registered())


# ------------------------------------------------------------------------------------------------ labels
def _display(name: str) -> SelectionMethod | None:
    try:
        return get_method(name)
    except Exception:  # a stored run whose plug-in is gone still gets a label: its name
        return None


def label_of(name: str) -> str:
    """The legend label of a method (``Greedy Selection``); an unknown name is its own label."""
    m = _display(name)
    return m.label if m else str(name)


def short_label_of(name: str) -> str:
    """The short label (``Greedy``, ``TDF``) used in claims and arm names."""
    m = _display(name)
    return m.short if m else str(name)


def colour_of(name: str) -> str | None:
    m = _display(name)
    return m.colour if m else None


# ------------------------------------------------------------------------------------------------ plug-ins
def selection_method(fn: Callable | None = None, *, params: Mapping[str, Any] | None = None,
                     spaces: tuple[str, ...] | None = None, defaults: Mapping[Any, Mapping[str, Any]] | None = None,
                     label: str | None = None, short: str | None = None, colour: str | None = None,
                     register_as: str | None = None) -> Callable:
    """Declare a function a selection method (see the module docstring for its signature).

    ``params``: ``{name: default}`` or ``{name: (default, help)}``; ``spaces``: the feature spaces it supports
    (default every one); ``defaults``: per-space parameter defaults as in :class:`SelectionMethod`;
    ``register_as``: also register it under this short name in the current process (spawned workers still need
    the ``"module:function"`` path). The function is returned unchanged, with the spec attached.
    """
    def wrap(f: Callable) -> Callable:
        spec = dict(params=params, spaces=spaces, defaults=defaults, label=label, short=short, colour=colour)
        f.__selection_method__ = spec  # type: ignore[attr-defined]
        if register_as:
            register(_from_function(register_as, f, spec), replace=True)
        return f

    return wrap(fn) if fn is not None else wrap


def _from_function(name: str, fn: Callable, spec: Mapping[str, Any]) -> SelectionMethod:
    if not callable(fn):
        raise ValueError(f"selection {name!r} is not a function but {type(fn).__name__}")
    if spec.get("params") is not None:
        params = []
        for pname, value in spec["params"].items():
            if isinstance(value, Param):
                params.append(value)
            elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
                params.append(Param(pname, value[0], value[1]))
            else:
                params.append(Param(pname, value))
    else:
        params = [Param(p.name, p.default) for p in inspect.signature(fn).parameters.values()
                  if p.name not in _RESERVED and p.default is not inspect.Parameter.empty
                  and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    spaces = tuple(spec.get("spaces") or FEATURE_SPACES)
    unknown = [s for s in spaces if s not in FEATURE_SPACES]
    if unknown:
        raise ValueError(f"selection {name!r}: unknown feature space(s) {unknown}; valid: {FEATURE_SPACES}")
    for key in spec.get("defaults") or {}:
        space, kind = key if isinstance(key, tuple) else (key, POOL_KINDS[0])
        if space not in FEATURE_SPACES or kind not in POOL_KINDS:
            raise ValueError(f"selection {name!r}: defaults for {key!r}: expected a feature space of {FEATURE_SPACES} "
                             f"or (space, pool kind of {POOL_KINDS})")
    fname = getattr(fn, "__name__", name.rsplit(":", 1)[-1])
    return SelectionMethod(name=name, function=fn, params=tuple(params), defaults=dict(spec.get("defaults") or {}),
                           spaces=spaces, label=spec.get("label") or fname, short=spec.get("short") or "",
                           colour=spec.get("colour"))


_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOADED: dict[str, str] = {}  # module name -> digest of the file it was imported from


def _file_digest(path: Path) -> str:
    st = os.stat(path)
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return _DIGESTS[key]


def _import_path(path: str) -> tuple[Callable, Any]:
    """Import ``"module:attr"``; a module whose file changed since it was imported is reloaded first."""
    if not _PATH.match(path):
        raise ValueError(f"selection {path!r}: a method of one's own is named 'module:function' "
                         "(e.g. 'mypkg.mymod:kcenter'), its module importable (on sys.path)")
    modname, attr = path.split(":", 1)
    try:
        module = importlib.import_module(modname)
    except Exception as exc:
        raise ValueError(f"selection {path!r}: cannot import module {modname!r} ({type(exc).__name__}: {exc}); "
                         "put its folder on sys.path / PYTHONPATH") from exc
    file = getattr(module, "__file__", None)
    if file and os.path.exists(file):
        digest = _file_digest(Path(file))
        if _LOADED.get(modname, digest) != digest:
            cached = importlib.util.cache_from_source(file)
            if os.path.exists(cached):
                os.remove(cached)  # a stale .pyc can hide an edit made within the same second
            module = importlib.reload(module)
        _LOADED[modname] = digest
        _export_folder(modname, Path(file))
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"selection {path!r}: module {modname!r} ({file}) has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"selection {path!r} is not a function but {type(obj).__name__}")
    return obj, module


def _export_folder(modname: str, file: Path) -> None:
    """Put the folder the top-level package of ``modname`` was found in on PYTHONPATH, so subprocesses (sweep
    tasks, papermill kernels) import the method from the same path. Spawned workers get ``sys.path`` anyway."""
    depth = modname.count(".") + (1 if file.name == "__init__.py" else 0)
    root = file.resolve().parent
    for _ in range(depth):
        root = root.parent
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(root) not in parts and str(root) != str(Path.cwd()):
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *parts])


# ------------------------------------------------------------------------------------------------ the built-ins
_SELECTION = "collapse_utils.loop.selection"
_DEVICE = Param("device", None, "torch device of the distance computations (default: the features' own, else CUDA "
                               "when available)", runtime=True)
# Initial threshold tau_0 and decay alpha per feature space and pool kind (PAPER.md §4.2 table, authors' code).
# "inception" (FID pool3, the offline stand-in for DINOv2) is our choice, not the authors': see
# collapse_utils.loop.selection.default_filter_params for its calibration. LeNet has none.
FILTER_DEFAULTS = {
    ("pixel", "replace"): {"threshold": 2000.0, "decay": 0.95},
    ("pixel", "accumulate"): {"threshold": 2000.0, "decay": 0.95},
    ("dinov2", "replace"): {"threshold": 60.0, "decay": 0.95},
    ("dinov2", "accumulate"): {"threshold": 60.0, "decay": 0.80},
    ("inception", "replace"): {"threshold": 10.0, "decay": 0.95},
    ("inception", "accumulate"): {"threshold": 10.0, "decay": 0.80},
}

for _m in (
    SelectionMethod(NO_SELECTION, f"{_SELECTION}:select_none", label="Vanilla", short="vanilla", colour="tab:blue",
                    builtin=True),
    SelectionMethod("threshold", f"{_SELECTION}:select_threshold", builtin=True, params=(
        Param("threshold", None, "starting distance tau_0 in the feature space's units", field="threshold"),
        Param("decay", None, "factor in (0, 1) the threshold is multiplied by when lowered", field="decay"),
        Param("schedule", "every_pass", "every_pass (the authors' code) or when_stalled (the pseudo-code)",
              field="filter_schedule"),
        Param("threshold_quantile", None, "ours, not the authors': start at this quantile (in (0, 1), e.g. 0.9) of "
              "the pool's nearest-neighbour distances instead of the fixed threshold, so that tau_0 matches the "
              "feature scale (None: the authors' fixed tau_0)"),
        _DEVICE),
        defaults=FILTER_DEFAULTS, spaces=tuple(dict.fromkeys(s for s, _ in FILTER_DEFAULTS)),
        label="Threshold Decay Filter", short="TDF", colour="tab:green"),
    SelectionMethod("greedy", f"{_SELECTION}:greedy_selection", params=(_DEVICE,), label="Greedy Selection",
                    short="Greedy", colour="tab:red", builtin=True),
    SelectionMethod("random", f"{_SELECTION}:select_random", label="Random selection", short="random",
                    colour="tab:gray", builtin=True),
):
    register(_m)
assert set(method_names()) == set(SELECTION_METHODS), "the built-ins are vocab.SELECTION_METHODS"
