"""Host threads for NumPy work that releases the GIL: the subject bootstrap's replicates
(`jaxsim.evaluate.clustered`) and the baselines' pair scores (`jaxsim.baselines`).

The work mapped must be a pure function of its item (no shared state it writes), so
the results do not depend on how many threads compute them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any


def usable(limit: int) -> int:
  """At most `limit` threads, one per CPU this process may use (at least 1)."""
  cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return max(1, min(limit, cpus or 1))


def map_in_order(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> list[Any]:
  """`[fn(x) for x in items]`, computed on `threads` threads when more than one."""
  if threads <= 1:
    return [fn(x) for x in items]
  with futures.ThreadPoolExecutor(threads) as pool:
    return list(pool.map(fn, items))
