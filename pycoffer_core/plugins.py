"""The plugin manager, and a typed facade over its hooks.

Callers use the functions here, never ``pm.hook.*`` with loose keywords.
Set ``PYCOFFER_NO_ENTRY_POINTS=1`` to load only the core's defaults (and
whatever is registered by hand), for example to rule out a broken plugin.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from . import hookspecs
from .default_plugins import DEFAULT_PLUGINS
from .errors import DuplicateTypeError, UnknownTypeError
from .types import CofferType, TypeInfo

if TYPE_CHECKING:
    from .container.base import Container
    from .events import CommitEvent
    from .locking import CofferLock

ENTRY_POINT_GROUP = "pycoffer"

_manager: pluggy.PluginManager | None = None
_manager_lock = threading.Lock()


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading entry points on first use."""
    global _manager
    with _manager_lock:
        if _manager is None:
            pm = pluggy.PluginManager(hookspecs.PROJECT)
            pm.add_hookspecs(hookspecs)
            for plugin in DEFAULT_PLUGINS:
                pm.register(plugin, name=f"pycoffer_core.{plugin.__name__.rsplit('.', 1)[-1]}")
            if not os.environ.get("PYCOFFER_NO_ENTRY_POINTS"):
                _load_entry_points(pm)
            pm.check_pending()
            _manager = pm
        return _manager


#: Plugins whose entry point failed to load: (distribution, error) pairs.
BROKEN_PLUGINS: list[tuple[str, str]] = []
_DISTRIBUTIONS: dict[int, tuple[str, str]] = {}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Register every ``pycoffer`` entry point; a broken one is skipped, not fatal.

    pluggy's own loader stops at the first plugin that fails to import, which
    would make every coffer type unusable because of one broken backend.
    """
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(entry_point.name) is not None or pm.is_blocked(entry_point.name):
            continue
        dist = entry_point.dist
        dist_name = dist.metadata["name"] if dist is not None else entry_point.value
        try:
            plugin = entry_point.load()
            pm.register(plugin, name=entry_point.name)
        except Exception as exc:  # any import-time failure of third-party code
            BROKEN_PLUGINS.append((dist_name, f"{type(exc).__name__}: {exc}"))
            warnings.warn(
                f"PyCoffer plugin {dist_name} ({entry_point.value}) failed to load and is "
                f"skipped: {exc}; reinstall it, or uninstall it",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        _DISTRIBUTIONS[id(plugin)] = (dist_name, dist.version if dist is not None else "unknown")


@contextmanager
def registered(plugin: object, name: str | None = None) -> Iterator[object]:
    """Register ``plugin`` for the duration of a ``with`` block (tests, scripts)."""
    pm = get_plugin_manager()
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(plugin)




def _collect_types() -> dict[str, tuple[type[CofferType], object]]:
    pm = get_plugin_manager()
    found: dict[str, tuple[type[CofferType], object]] = {}
    for impl in pm.hook.pycoffer_types.get_hookimpls():
        for cls in impl.function() or ():
            if cls.name in found and found[cls.name][0] is not cls:
                raise DuplicateTypeError(
                    f"coffer type {cls.name!r} is registered by two plugins: "
                    f"{pm.get_name(found[cls.name][1])} and {impl.plugin_name}; uninstall one"
                )
            found[cls.name] = (cls, impl.plugin)
    return found


def type_infos() -> list[TypeInfo]:
    """Every installed coffer type, sorted by name."""
    get_plugin_manager()
    dists = _DISTRIBUTIONS
    infos = []
    for name, (cls, plugin) in sorted(_collect_types().items()):
        dist, version = dists.get(id(plugin), (getattr(plugin, "__name__", "?"), "unknown"))
        infos.append(
            TypeInfo(
                name=name,
                distribution=dist,
                version=version,
                description=cls.description,
                auto_flush=cls.auto_flush,
                key_params=tuple(cls.key_params),
            )
        )
    return infos


def find_type(name: object) -> type[CofferType]:
    """The class of coffer type ``name``, or :class:`UnknownTypeError` saying what to install."""
    if not isinstance(name, str) or not name:
        raise UnknownTypeError(f"type must be the name of a coffer type, not {name!r}")
    types = _collect_types()
    if name not in types:
        installed = ", ".join(sorted(types)) or "none"
        broken = "".join(f"; plugin {dist} failed to load ({error})" for dist, error in BROKEN_PLUGINS)
        raise UnknownTypeError(
            f"no coffer type {name!r} is installed (installed: {installed}); "
            f"install it with: pip install pycoffer-{name}{broken}"
        )
    return types[name][0]


def container_class(path: Path, coffer_type: type[CofferType]) -> type[Container]:
    result = get_plugin_manager().hook.pycoffer_container(path=path, coffer_type=coffer_type)
    assert result is not None  # the default container always answers
    return result


def lock_for(path: Path, lock_timeout: float) -> CofferLock:
    result = get_plugin_manager().hook.pycoffer_lock(path=path, lock_timeout=lock_timeout)
    assert result is not None  # the default lock always answers
    return result


def temp_dir_for(path: Path, requested: Path | None) -> Path:
    result = get_plugin_manager().hook.pycoffer_temp_dir(path=path, requested=requested)
    assert result is not None  # the default temp dir always answers
    return Path(result)


def commit_hooks_wanted() -> bool:
    """Whether any plugin implements a commit hook: if none does, a commit
    skips building the event (a measurable share of a small commit)."""
    hook = get_plugin_manager().hook
    return bool(hook.pycoffer_before_commit.get_hookimpls() or hook.pycoffer_after_commit.get_hookimpls())


def before_commit(event: CommitEvent) -> None:
    get_plugin_manager().hook.pycoffer_before_commit(event=event)


def after_commit(event: CommitEvent) -> None:
    get_plugin_manager().hook.pycoffer_after_commit(event=event)
