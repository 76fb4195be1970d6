"""Progress on a terminal: files read, then each later phase of the run with its time.

Only when stderr is a terminal: a pipe, a CI log or a hook gets nothing. The run
reports files as they are read (cached ones too) and names each later phase
(linking, each whole-tree rule) through ``phase``; a phase can run for many
seconds without calling back, so a thread redraws its elapsed time each second.
The thread runs only between ``phase(name)`` and ``phase(None)``, while no
worker is being forked.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_CLEAR = "\033[K"


class Terminal:
    """One line on ``stream``, redrawn in place and cleared at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._name: str | None = None
        self._start = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self, done: int, total: int) -> None:
        """``done`` of ``total`` files read; the line is cleared after the last (a
        command without later phases, such as stats, prints on a clean line)."""
        if done == total or done % 200 == 0:
            self._draw(f"reading {done}/{total} files")
            if done == total:
                self._draw("")

    def phase(self, name: str | None) -> None:
        """A phase begins (None: the run's analysis is over, the line is cleared)."""
        with self._lock:
            self._name, self._start = name, time.monotonic()
        if name is None:
            self._stop.set()
            if self._ticker is not None:
                self._ticker.join()
                self._ticker = None
            self._draw("")
            return
        self._show_phase()
        if self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="nofslint-progress",
                                            daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self._show_phase()

    def _show_phase(self) -> None:
        with self._lock:
            name, start = self._name, self._start
        if name is not None:
            self._draw(f"{name}: {time.monotonic() - start:.0f} s")

    def _draw(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(f"\r{text}{_CLEAR}")
                self.stream.flush()
            except (OSError, ValueError):  # a hung-up terminal: nothing to show
                pass


def progress() -> Terminal | None:
    """A reporter when stderr is a terminal, else None."""
    return Terminal(sys.stderr) if sys.stderr.isatty() else None
