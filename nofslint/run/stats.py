"""``nofslint stats``: parse quality, how many function definitions parse with errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nofslint.frontend.parse import function_error_counts, parse_source
from nofslint.frontend.source import SourceError, read_source
from nofslint.run import workers
from nofslint.run.loading import Task, plan
from nofslint.run.workers import FileTimeout, parallel_map, time_limit


def _stats_task(task: Task) -> tuple[int, int, int, str | None]:
    path = Path(task[0])
    try:
        raw = read_source(path)
    except SourceError as exc:
        return 0, 0, 0, str(exc)
    try:
        with time_limit(workers.FILE_TIME_LIMIT):
            funcs, bad = function_error_counts(parse_source(raw)[1])
    except RecursionError:
        return len(raw), 0, 0, "nesting too deep to parse"
    except FileTimeout:
        return len(raw), 0, 0, f"took longer than {workers.FILE_TIME_LIMIT:g} s to parse"
    return len(raw), funcs, bad, None


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0
    functions: int = 0
    functions_with_errors: int = 0
    seconds: float = 0.0
    unreadable: int = 0

    @property
    def percent(self) -> float:
        return 100.0 * self.functions_with_errors / self.functions if self.functions else 0.0

    def to_json(self) -> dict[str, object]:
        return {"files": self.files, "bytes": self.bytes, "functions": self.functions,
                "functions_with_errors": self.functions_with_errors,
                "percent_with_errors": round(self.percent, 3), "unreadable": self.unreadable,
                "seconds": round(self.seconds, 2)}


def stats(paths: list[Path], jobs: int,
          progress: Callable[[int, int], None] | None = None) -> Stats:
    start = time.perf_counter()
    tasks = plan(paths, None)
    out = Stats(files=len(tasks))
    for size, funcs, bad, error in parallel_map(_stats_task, tasks, jobs, progress):  # type: ignore[misc]
        out.bytes += size
        out.functions += funcs
        out.functions_with_errors += bad
        out.unreadable += error is not None
    out.seconds = time.perf_counter() - start
    return out
