"""Training with model selection on validation, shared by the mnist_text and
similarity_search tasks.

`fit_best` trains with `jaxsim.train.fit` (resuming from the workdir), evaluates
every `train.eval_every` steps with the caller's validation `eval_fn`,
checkpoints at every evaluation, and returns the variables of the checkpoint
with the best `train.best_metric`, not the last (or a stale first) one: the
flaw of source project 5, whose validation scored a stale global model, was to
keep the epoch-1 weights without noticing.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import flax.linen as nn

from jaxsim import inference, train


def fit_best(
  train_cfg: Any,
  *,
  model: nn.Module,
  loss_fn: Callable,
  train_iter: Iterator[Mapping[str, Any]],
  workdir: pathlib.Path,
  inputs: Mapping[str, Any],
  eval_fn: Callable[[dict], Mapping[str, float]],
) -> tuple[dict[str, Any], dict[str, float]]:
  """Trains (or resumes) and returns (variables of the best checkpoint, selection info).

  Requires `train_cfg.best_metric`; `train_cfg.checkpoint_every` must equal
  `train_cfg.eval_every` so that every evaluated step is a checkpoint that can win.

  Returns:
    variables: `{"params", ["batch_stats"]}` of the best validation checkpoint.
    info: `best_step`, `best_val` (its metric), `first_val` (the metric at the
      first evaluation), `last_val`, `num_evals`, `resumed_from`, and `final_<metric>`
      for the train metrics of the last step run (none when nothing was left to run).
  """
  if not train_cfg.best_metric:
    raise ValueError("train.best_metric must name the validation metric for model selection")
  if train_cfg.eval_every <= 0 or train_cfg.checkpoint_every != train_cfg.eval_every:
    raise ValueError(
      "train.checkpoint_every must equal train.eval_every (> 0) so that every evaluated "
      f"step is a checkpoint; got {train_cfg.checkpoint_every} and {train_cfg.eval_every}"
    )
  result = train.fit(
    train_cfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=train_iter,
    workdir=pathlib.Path(workdir),
    inputs=inputs,
    eval_fn=eval_fn,
  )
  sel = result.selection(train_cfg.best_metric)
  info = {
    "best_step": sel["selected_step"],
    "best_val": sel["selected_val"],
    "first_val": sel["first_val"],
    "last_val": sel["last_val"],
    "num_evals": sel["num_evals"],
    "resumed_from": float(result.resumed_from),
    **{f"final_{k}": v for k, v in result.last_metrics.items()},
  }
  return inference.variables_of(result.selected_state), info
