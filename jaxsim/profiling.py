"""Where a run's wall time goes: named phases, with XLA compilation split out.

    from jaxsim import profiling

    profiling.enable()
    with profiling.phase("train: steps"):
      ...
    print(profiling.table(profiling.breakdown(total_seconds)))

Phases nest, and each reports its exclusive time: a phase's own wall time minus its
inner phases and minus the XLA compilations that happened inside it. Compilation is
its own row, fed by JAX's monitoring events (XLA backend compilation and reads from
the persistent compilation cache; tracing and lowering stay in the phase that
triggered them). With profiling off (the default), `phase` costs one flag check.

`experiments.run --profile` turns it on for a run: `train.fit` marks its own phases
(model init, input pipeline, steps, selection evaluation, checkpoints), `instrument`
marks the library calls that every task makes (data preparation, report writers and
figures), and what is left of the task's run is counted as evaluation.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax

COMPILE = "compile (XLA)"
# JAX's duration events that are compilation work not nested in one another.
_COMPILE_EVENTS = (
  "/jax/core/compile/backend_compile_duration",
  "/jax/compilation_cache/cache_retrieval_time_sec",
)

_enabled = False
_listening = False
_totals: collections.defaultdict[str, float] = collections.defaultdict(float)
_counts: collections.defaultdict[str, int] = collections.defaultdict(int)
_stack: list[list] = []  # [name, start, excluded seconds]


def enable() -> None:
  """Starts recording (and clears what was recorded)."""
  global _enabled, _listening
  reset()
  _enabled = True
  if not _listening:
    jax.monitoring.register_event_duration_secs_listener(_on_event)
    _listening = True


def disable() -> None:
  global _enabled
  _enabled = False


def reset() -> None:
  _totals.clear()
  _counts.clear()
  _stack.clear()


def _on_event(event: str, duration: float, **_) -> None:
  if not _enabled or event not in _COMPILE_EVENTS:
    return
  _totals[COMPILE] += duration
  _counts[COMPILE] += 1
  if _stack:
    _stack[-1][2] += duration


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
  """Counts the wall time of the block (less inner phases and compilation) as `name`."""
  if not _enabled:
    yield
    return
  entry = [name, time.perf_counter(), 0.0]
  _stack.append(entry)
  try:
    yield
  finally:
    _stack.pop()
    elapsed = time.perf_counter() - entry[1]
    _totals[name] += elapsed - entry[2]
    _counts[name] += 1
    if _stack:
      _stack[-1][2] += elapsed


def wrap(fn: Callable, name: str) -> Callable:
  """`fn` with every call counted as phase `name`."""

  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with phase(name):
      return fn(*args, **kwargs)

  wrapped.__wrapped_by_profiling__ = True
  return wrapped


def instrument(modules: dict[str, list[tuple[Any, str]]]) -> None:
  """Wraps module attributes in place: {phase: [(module, function name), ...]}.

  Callers that look the function up on the module at call time (`report.plot_roc(...)`,
  or a task's own `prepare(...)` from its `run`) are then counted; missing names are
  skipped, and a function is wrapped once.
  """
  for name, targets in modules.items():
    for module, attr in targets:
      fn = getattr(module, attr, None)
      if callable(fn) and not getattr(fn, "__wrapped_by_profiling__", False):
        setattr(module, attr, wrap(fn, name))


def breakdown(total_seconds: float, rest: str = "other") -> dict[str, dict[str, float]]:
  """{phase: {seconds, share, calls}}, longest first; `rest` is what no phase counted."""
  rows = {k: {"seconds": v, "calls": float(_counts[k])} for k, v in _totals.items()}
  rows[rest] = {"seconds": max(total_seconds - sum(_totals.values()), 0.0), "calls": 0.0}
  for row in rows.values():
    row["share"] = row["seconds"] / total_seconds if total_seconds > 0 else float("nan")
  return dict(sorted(rows.items(), key=lambda kv: -kv[1]["seconds"]))


def table(rows: dict[str, dict[str, float]]) -> str:
  """The breakdown as a Markdown table."""
  lines = ["| phase | seconds | share | calls |", "|---|---|---|---|"]
  for name, r in rows.items():
    calls = str(int(r["calls"])) if r["calls"] else ""
    lines.append(f"| {name} | {r['seconds']:.1f} | {100 * r['share']:.0f}% | {calls} |")
  return "\n".join(lines)


DATA = "data preparation"
REPORT = "report and figures"


def instrument_library() -> None:
  """Marks the library calls that every task makes (see the module docstring).

  Call after the task's module is imported: the task modules already loaded are
  instrumented (importing every task here would cost a run seconds of imports).
  """
  import sys  # noqa: PLC0415

  from jaxsim import report  # noqa: PLC0415
  from jaxsim.data import loaders  # noqa: PLC0415

  task_modules = [m for n, m in list(sys.modules.items()) if n.startswith("jaxsim.tasks.")]
  data = [(loaders, n) for n in dir(loaders) if n.startswith("load_")]
  for module in task_modules:
    data += [(module, n) for n in ("prepare", "load_paired_data") if hasattr(module, n)]
  figures = [(report, n) for n in dir(report) if n.startswith(("plot_", "write_", "add_"))]
  instrument({DATA: data, REPORT: figures})
