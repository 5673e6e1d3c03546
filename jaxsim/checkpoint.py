"""Checkpoints of the train state and the data-iterator state (the only module that uses Orbax).

A checkpoint at step N holds the train state after N optimiser steps and the
state of the data iterator after it produced N batches, so a restarted run
continues exactly where the saved one stood. Checkpoints are written every
`save_every` steps (asynchronously; the device arrays are copied first, so
the caller may keep training and donating buffers); the newest `keep` are kept,
and also the best one by a validation metric when `best_metric` is given.
Every process calls `save` (Orbax coordinates the hosts; Grain writes one
iterator-state file per process).
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm


def _has_state(data_iter: Any) -> bool:
  return data_iter is not None and hasattr(data_iter, "get_state")


class _IteratorSnapshot:
  """The iterator's state, taken now.

  Orbax may run Grain's handler in a background thread, after training has
  advanced the iterator; the snapshot keeps the state of the saved step. It
  goes through the handler's bytes path, which writes the same JSON text.
  """

  def __init__(self, data_iter: Any):
    state = data_iter.get_state()
    self._state = state if isinstance(state, bytes) else json.dumps(state, indent=4).encode()

  def get_state(self) -> bytes:
    return self._state


class _IteratorRestorer:
  """Hands the saved JSON back to any iterator with `set_state` (dict or bytes states)."""

  def __init__(self, data_iter: Any):
    self._iter = data_iter

  def set_state(self, state: bytes) -> None:
    if isinstance(self._iter, grain.DataLoaderIterator):
      self._iter.set_state(state)
    else:
      self._iter.set_state(json.loads(state))

  def start_prefetch(self) -> None:
    if hasattr(self._iter, "start_prefetch"):
      self._iter.start_prefetch()


class Checkpointer:
  """Saves and restores `(train state, data iterator)` pairs in one directory.

  Args:
    directory: where step subdirectories are written (created if missing).
    save_every: save when `step % save_every == 0` (and whenever `force=True`).
    keep: number of most recent checkpoints to keep.
    best_metric: key of the evaluation metric that ranks checkpoints; the
      best-ranked one is kept beside the `keep` newest. None: no ranking.
    best_mode: "max" or "min", whether a larger metric is better.
    async_save: write in a background thread.
  """

  def __init__(
    self,
    directory: str | pathlib.Path,
    *,
    save_every: int,
    keep: int = 3,
    best_metric: str | None = None,
    best_mode: str = "max",
    async_save: bool = True,
  ):
    if save_every < 1 or keep < 1:
      raise ValueError(f"save_every and keep must be >= 1, got {save_every} and {keep}")
    if best_mode not in ("max", "min"):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    self.directory = pathlib.Path(directory).resolve()
    self.best_metric = best_metric
    self.best_mode = best_mode
    policies = [ocm.LatestN(n=keep)]
    if best_metric is not None:
      policies.append(
        ocm.BestN(
          get_metric_fn=self._metric,
          # BestN keeps the top of an ascending sort; reversing makes "min" the top.
          reverse=best_mode == "min",
          n=1,
          keep_checkpoints_without_metrics=False,
        )
      )
    self._manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        save_interval_steps=save_every,
        preservation_policy=ocm.AnyPreservationPolicy(policies),
        # Orbax writes metrics only when best_fn is set; the policy above does the ranking.
        best_fn=self._metric if best_metric is not None else None,
        best_mode=best_mode,
        enable_async_checkpointing=async_save,
        create=True,
      ),
    )

  def _metric(self, metrics: Mapping[str, float]) -> float:
    value = metrics.get(self.best_metric, math.nan)
    # A missing or NaN metric ranks last.
    if value is None or math.isnan(value):
      return -math.inf if self.best_mode == "max" else math.inf
    return float(value)

  def latest_step(self) -> int | None:
    """The newest saved step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def rank(self, metrics: Mapping[str, float]) -> float:
    """The value that ranks a checkpoint saved with `metrics` (missing or NaN: last)."""
    return self._metric(metrics)

  def better(self, a: tuple[float, int], b: tuple[float, int]) -> bool:
    """Whether (rank, step) `a` beats `b` as `best_step` orders them (ties: the later
    step with "max", the earlier with "min")."""
    return a > b if self.best_mode == "max" else a < b

  def best_step(self) -> int | None:
    """The saved step with the best `best_metric` (None without ranking or metrics)."""
    if self.best_metric is None:
      return None
    ranked = []
    for step in self._manager.all_steps():
      metrics = self._manager.metrics(step)
      if metrics and self.best_metric in metrics:
        ranked.append((self._metric(metrics), step))
    if not ranked:
      return None
    return (max if self.best_mode == "max" else min)(ranked)[1]

  def save(
    self,
    step: int,
    state: Any,
    data_iter: Any = None,
    metrics: Mapping[str, float] | None = None,
    *,
    record: Mapping[str, Any] | None = None,
    force: bool = False,
  ) -> bool:
    """Saves `state` (a pytree of arrays) and the iterator's state at `step`.

    `metrics` rank the checkpoint (`best_metric`); `record` is any JSON-able dict kept
    with it (`fit` stores its validation history there, so a resumed run selects the
    same way) and read back by `restore_record`.

    Returns whether a checkpoint was started (False between save intervals).
    """
    items = {"state": ocp.args.StandardSave(state)}
    if _has_state(data_iter):
      items["data"] = grain.checkpoint.CheckpointSave(_IteratorSnapshot(data_iter))
    if record is not None:
      items["record"] = ocp.args.JsonSave(dict(record))
    return self._manager.save(
      step,
      args=ocp.args.Composite(**items),
      metrics=dict(metrics) if metrics else None,
      force=force,
    )

  def restore(self, step: int, abstract_state: Any, data_iter: Any = None) -> Any:
    """Restores the state at `step` into the structure, shapes and shardings of
    `abstract_state` (arrays or `jax.ShapeDtypeStruct`s), and sets `data_iter`'s
    position in place when given."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    items = {"state": ocp.args.StandardRestore(abstract)}
    if _has_state(data_iter):
      items["data"] = grain.checkpoint.CheckpointRestore(_IteratorRestorer(data_iter))
    if self._has_record(step):
      items["record"] = ocp.args.JsonRestore()
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"]

  def _has_record(self, step: int) -> bool:
    # A file check: Orbax's item_metadata warns about every item it does not restore.
    return (self.directory / str(step) / "record").is_dir()

  def restore_record(self, step: int) -> dict[str, Any]:
    """The `record` saved with `step` ({} when it was saved without one)."""
    if not self._has_record(step):
      return {}
    # Orbax warns about every item not asked for (the state, the data iterator); here
    # leaving them is the point, so its warnings are silenced for this one read.
    logging.disable(logging.WARNING)
    try:
      args = ocp.args.Composite(record=ocp.args.JsonRestore())
      return dict(self._manager.restore(step, args=args)["record"])
    finally:
      logging.disable(logging.NOTSET)

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
