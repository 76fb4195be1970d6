"""Workers: a process pool that survives a worker's death, and a per-file time limit.

Results come back in task order whatever the number of jobs, so the output
never depends on it. A worker that dies costs only the file it was on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")


# A file whose facts take longer than this is reported and skipped, so no one
# file can stall a run (the slowest file of v6.12 takes a few seconds).
FILE_TIME_LIMIT = 60.0


class FileTimeout(BaseException):
    """Raised by SIGALRM in the middle of one file's analysis.

    A BaseException, so no ``except Exception`` inside extraction swallows it.
    """


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise FileTimeout in the block after ``seconds``; the SIGALRM handler and the
    timer are restored afterwards. Without SIGALRM (not Unix), outside the main
    thread or under a caller's own running timer, the block runs unlimited."""
    if (seconds <= 0 or not hasattr(signal, "setitimer")
            or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise FileTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


# After this many files whose worker died, the pool itself is suspect: the rest
# run in this process (a crash then ends the run visibly instead of hanging it).
_MAX_LOST = 8
_DIED = "died while analysing this file (a crash in native code, or out of memory)"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def parallel_map(func: Callable[[T], object], tasks: list[T], jobs: int,
                 progress: Callable[[int, int], None] | None = None,
                 on_lost: Callable[[T, str], object] | None = None) -> Iterator[object]:
    """Results in task order whatever the number of jobs.

    A worker process that dies (a crash in native code, the OOM killer) costs
    only the file it was on: ``on_lost(task, why)`` stands in for its result
    (without ``on_lost``: RuntimeError). A dead worker never hangs the run.
    """
    pooled = jobs > 1 and len(tasks) >= 4
    results = _pooled(func, tasks, jobs, on_lost) if pooled else map(func, tasks)
    for done, result in enumerate(results, 1):
        yield result
        if progress:
            progress(done, len(tasks))


class _Broken:
    """Marks where a pool lost a worker: every result before it is good."""


def _worker_init(parent: int) -> None:
    """A worker dies with the run: SIGTERM/SIGHUP kill it outright (a handler the
    command installed, inherited by fork, must not run here), and on Linux so
    does its parent's death, even by SIGKILL. A worker left behind blocks on the
    pool's pipe forever, holding the caller's stdout and stderr open."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup stays nohup
            signal.signal(sig, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes  # here: a few ms the command's start need not pay

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl: go now
            os._exit(1)


def kill_workers() -> None:
    """Kill this process's worker processes now and reap them.

    For the command's SIGTERM/SIGHUP handler: nothing waits for their files
    any more, and unlike Ctrl-C (sent to the whole process group) the signal
    reached only this process.
    """
    children = multiprocessing.active_children()
    for child in children:
        with contextlib.suppress(OSError, ValueError):
            child.kill()
    for child in children:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            child.join(timeout=5)


def _run_chunk(func: Callable[[T], object], chunk: list[T]) -> list[object]:
    gc.enable()  # forked from a run that paused it (see _gc_paused)
    return [func(task) for task in chunk]


def _until_broken(func: Callable[[T], object], tasks: list[T], jobs: int,
                  chunk: int) -> Iterator[object]:
    """Results in order on a fresh pool, until a worker dies: then one _Broken."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init,
                                                  initargs=(os.getpid(),))
    try:
        futures = [pool.submit(_run_chunk, func, tasks[i:i + chunk])
                   for i in range(0, len(tasks), chunk)]
        for future in futures:
            try:
                results = future.result()
            except BrokenProcessPool:
                yield _Broken()
                return
            yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pooled(func: Callable[[T], object], tasks: list[T], jobs: int,
            on_lost: Callable[[T, str], object] | None) -> Iterator[object]:
    """Chunks of tasks on a process pool, in order, surviving dead workers.

    When a worker dies, the first unfinished chunk and the next ones (jobs + 1
    in all: as many as the pool runs or queues) run again one file at a time
    on a single worker, where the first unfinished file is the one that killed
    it. Should the culprit have been further on, it kills the pool again and is
    found the same way in the next round.
    """
    chunk = max(1, min(64, len(tasks) // (jobs * 8)))
    pos = lost = 0
    while pos < len(tasks):
        if lost >= _MAX_LOST:
            yield from map(func, tasks[pos:])
            return
        for result in _until_broken(func, tasks[pos:], jobs, chunk):
            if isinstance(result, _Broken):
                break
            yield result
            pos += 1
        else:
            return
        end = min(len(tasks), pos + (jobs + 1) * chunk)
        while pos < end:
            for result in _until_broken(func, tasks[pos:end], 1, 1):
                if isinstance(result, _Broken):
                    break
                yield result
                pos += 1
            else:
                break
            lost += 1
            if on_lost is None:
                raise RuntimeError(f"a worker process {_DIED}: {tasks[pos][0]}")
            yield on_lost(tasks[pos], _DIED)
            pos += 1
