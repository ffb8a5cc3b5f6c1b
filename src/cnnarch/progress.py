"""Progress of the long phases (building a dataset cache, epochs, evaluation, TTA, export) in a form that
everyone can read: on a terminal a tqdm bar with rate and ETA; elsewhere (a log file, CI, a notebook's
captured output) a dated line every :data:`INTERVAL` seconds with the same numbers, so that a slow run
never looks hung and a log shows when each phase ran.

    with progress(len(batches), "evaluation", unit="batch") as bar:
        for x, y in batches:
            ...
            bar.update(1, loss=f"{loss:.3f}")

The choice between the two follows standard error, where tqdm draws: a terminal there gets the bar.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from tqdm.auto import tqdm

INTERVAL = 15.0  # seconds between two lines of a log


def on_terminal() -> bool:
    return sys.stderr.isatty()


def _print(line: str) -> None:
    print(line, flush=True)


def duration(seconds: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``."""
    s = round(seconds)
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def _amount(n: float, unit: str) -> str:
    """``3.00MB`` (bytes), ``36,000``, ``0.22`` (a rate below 100: three digits)."""
    if unit == "B":
        return tqdm.format_sizeof(n, "B", 1024)
    return f"{n:,.0f}" if n >= 100 or n == int(n) else f"{n:.3g}"


class Bar:
    """tqdm's bar (on a terminal); ``scale`` counts each update as that many ``unit`` (a batch of
    images)."""

    def __init__(self, total: int | None, desc: str, unit: str, scale: int, leave: bool):
        self._bar = tqdm(
            total=None if total is None else total * scale,
            desc=desc,
            unit=unit,
            unit_scale=unit == "B",
            unit_divisor=1024 if unit == "B" else 1000,
            leave=leave,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        self.scale = scale

    def update(self, n: int = 1, **postfix) -> None:
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(n * self.scale)

    def write(self, line: str) -> None:
        self._bar.write(line)

    def close(self) -> None:
        self._bar.close()


class LogLines:
    """A dated line every ``interval`` seconds: done and total, rate, elapsed time, ETA, and the latest
    ``postfix`` values (loss, learning rate); one more at the end when a line was written before."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        scale: int = 1,
        write: Callable[[str], None] = _print,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.total = None if total is None else total * scale
        self.desc, self.unit, self.scale, self.write = desc, unit, scale, write
        self.interval = INTERVAL if interval is None else interval
        self.clock = clock
        self.n = self.shown = 0
        self.postfix: dict = {}
        self.start = self.last = clock()
        self.lines = 0

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n * self.scale
        self.postfix.update(postfix)
        if self.clock() - self.last >= self.interval:
            self._line()

    def _line(self, final: bool = False) -> None:
        now = self.clock()
        self.last, self.shown = now, self.n
        self.lines += 1
        elapsed = now - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        unit = "" if self.unit == "B" else f" {self.unit}"  # bytes: 3.00MB
        done = _amount(self.n, self.unit)
        if self.total:
            done += f"/{_amount(self.total, self.unit)}{unit} ({100 * self.n / self.total:.0f}%)"
        else:
            done += unit
        parts = [done, f"{_amount(rate, self.unit)}{unit}/s", f"{duration(elapsed)} elapsed"]
        if self.total and rate > 0 and not final:
            parts.append(f"ETA {duration((self.total - self.n) / rate)}")
        parts += [f"{k} {v}" for k, v in self.postfix.items()]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self.write(f"{stamp} {self.desc}{' done' if final else ''}: {', '.join(parts)}")

    def close(self) -> None:
        if self.lines and self.n != self.shown:  # the last line did not show the end already
            self._line(final=True)


class Quiet:
    """No progress shown (``enabled=False``: another process shows it, or the caller asked for none)."""

    def update(self, n: int = 1, **postfix) -> None:
        pass

    def write(self, line: str) -> None:
        _print(line)

    def close(self) -> None:
        pass


def start_progress(
    total: int | None,
    desc: str,
    unit: str = "it",
    *,
    scale: int = 1,
    enabled: bool = True,
    write: Callable[[str], None] = _print,
    interval: float | None = None,
    leave: bool = False,
) -> Bar | LogLines | Quiet:
    """A bar on a terminal, dated lines (through ``write``) elsewhere, nothing when not ``enabled``;
    the caller closes it. ``total`` counts updates, each ``scale`` ``unit`` (``scale=batch_size,
    unit="img"``)."""
    if not enabled:
        return Quiet()
    if on_terminal():
        return Bar(total, desc, unit, scale, leave)
    return LogLines(total, desc, unit, scale, write, interval)


@contextmanager
def progress(total: int | None, desc: str, unit: str = "it", **kw):
    """:func:`start_progress` as a context: closed at the end of the block."""
    shown = start_progress(total, desc, unit, **kw)
    try:
        yield shown
    finally:
        shown.close()


def _print_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def phase(desc: str, *, after: float = 3.0, write: Callable[[str], None] = _print_err):
    """A step that cannot count its progress (one call into an exporter): once it has run ``after``
    seconds, a dated line says what is running, and at its end one more gives its duration."""
    start = time.perf_counter()
    said = []

    def say() -> None:
        said.append(True)
        write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {desc} ...")

    timer = threading.Timer(after, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if said:
            seconds = duration(time.perf_counter() - start)
            write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {desc}: done in {seconds}")
