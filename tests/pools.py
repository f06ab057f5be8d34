"""Thread pools that refuse work, as a pool does at interpreter exit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


class RefusesAfter(ThreadPoolExecutor):
    """A pool that takes ``taken`` tasks, then refuses every other one, as a
    pool does when the interpreter exits between two submissions."""

    def __init__(self, taken: int) -> None:
        super().__init__(2)
        self.taken = taken
        self.refused = 0  # submissions refused

    def submit(self, fn, /, *args, **kwargs):
        if self.taken == 0:
            self.refused += 1
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        self.taken -= 1
        return super().submit(fn, *args, **kwargs)
