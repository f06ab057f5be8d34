"""Hook specifications: the four concerns a plugin can take over.

A plugin is a module (or object) with functions marked ``@hookimpl`` and is
found through the ``pycoffer`` entry-point group::

    # pyproject.toml of the distribution pycoffer-foo
    [project.entry-points.pycoffer]
    foo = "pycoffer_foo"

    # pycoffer_foo/__init__.py
    from pycoffer_core import hookimpl

    @hookimpl
    def pycoffer_types():
        return [FooType]

The core's own defaults are plugins registered before any installed one, so
an installed plugin's first-result hook wins over them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .container.base import Container
    from .events import CommitEvent
    from .locking import CofferLock
    from .types import CofferType

PROJECT = "pycoffer"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def pycoffer_types() -> Iterable[type[CofferType]]:
    """Return the coffer types this plugin provides.

    Collected from every plugin. A type name registered twice raises
    :class:`~pycoffer_core.errors.DuplicateTypeError` when types are listed.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def pycoffer_container(path: Path, coffer_type: type[CofferType]) -> type[Container] | None:
    """Return the :class:`~pycoffer_core.container.base.Container` class that
    lays out members, the index and commits in the coffer file at ``path``
    for coffers of type ``coffer_type``.

    First result wins; return ``None`` to leave the choice to others. The
    default is the log-structured container described in ``docs/format.md``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def pycoffer_lock(path: Path, lock_timeout: float) -> CofferLock | None:
    """Return the lock that keeps other processes out of the coffer at ``path``.

    The coffer calls ``acquire()`` once when it opens (raising
    :class:`~pycoffer_core.errors.LockTimeoutError` after ``lock_timeout``
    seconds) and ``release()`` once when it closes. A lock must never remove
    a lock it does not hold. First result wins; the default is a
    ``filelock.FileLock`` on ``<coffer>.lock``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def pycoffer_temp_dir(path: Path, requested: Path | None) -> Path | None:
    """Return the folder under which a coffer at ``path`` keeps scratch files.

    ``requested`` is the ``temp_dir`` argument of :meth:`Coffer.open`, or
    ``None``. The coffer makes a private (0700) folder inside the returned one
    on first use and removes it when it closes. Anything written there must
    already be sealed: no plaintext of an encrypted layer may reach it. First
    result wins; the default is ``requested``, else the system temp dir.

    .. versionadded:: 0.1
    """


@hookspec
def pycoffer_before_commit(event: CommitEvent) -> None:
    """Called before each commit is written; every plugin is called.

    An exception raised here aborts the commit: nothing is written and the
    changes stay pending.

    .. versionadded:: 0.1
    """


@hookspec
def pycoffer_after_commit(event: CommitEvent) -> None:
    """Called after each commit is durable on disk; every plugin is called.

    The commit is already acknowledged: an exception raised here propagates
    to the caller but does not undo it.

    .. versionadded:: 0.1
    """
