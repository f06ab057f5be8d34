"""The core's defaults, loaded as ordinary plugins before any installed one."""

from . import container, lock, temp_dir

DEFAULT_PLUGINS = (container, lock, temp_dir)
