"""Progress display for long calls: tqdm when it is installed, else one line on stderr."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

ProgressArg = bool | Callable[[int, int], None] | None


class _Line:
    """A progress line rewritten in place on stderr, at most ten times a second."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self.last = 0.0
        self.shown = False

    def update(self, done: int, total: int, extra: str = "") -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        percent = 100.0 * done / total if total else 100.0
        sys.stderr.write(f"\r{self.desc}: {percent:5.1f}% ({done}/{total}){extra}   ")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = False


class _Tqdm:
    def __init__(self, desc: str) -> None:
        import tqdm  # noqa: PLC0415  (optional dependency)

        self.bar = tqdm.tqdm(desc=desc, total=1, leave=True)

    def update(self, done: int, total: int, extra: str = "") -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        if extra:
            self.bar.set_postfix_str(extra.strip(" ,"), refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class Progress:
    """What a call reports its progress to: `progress=True` shows a bar, `False` or `None`
    nothing, a callable f(done, total) is called instead of the bar."""

    def __init__(self, progress: ProgressArg, desc: str) -> None:
        self.callback: Optional[Callable[[int, int], None]] = None
        self.display = None
        if callable(progress):
            self.callback = progress
        elif progress:
            try:
                self.display = _Tqdm(desc)
            except ImportError:
                self.display = _Line(desc)

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if self.callback is not None:
            self.callback(done, total)
        elif self.display is not None:
            self.display.update(done, total, extra)

    def newline(self) -> None:
        """Ends the line shown (before a message is printed under it)."""
        if isinstance(self.display, _Line):
            self.display.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.close()
