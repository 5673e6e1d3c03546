"""Optimisers, the sharded train step and the training loop shared by every task.

The train state is a plain dict pytree
`{"step": int32[], "params": ..., "batch_stats": ..., "opt_state": ...}`.
`make_train_step` returns `state, metrics = train_step(state, batch)`, jitted
once over a 1-D `data` mesh with the state donated; the batch is sharded on
its leading axis, so the loss (and any in-batch negatives or batch-norm
statistics) sees the global batch. The loss is a parameter:
`loss_fn(outputs, batch) -> (scalar loss, dict of scalar aux metrics)`, where
`outputs` is the model's output dict (`embeddings_a`, `embeddings_b`,
`logits`, `log_temperature`, `bias`, as the model provides).

`fit` runs the loop: it resumes from the newest checkpoint in the workdir,
logs JSONL records, evaluates periodically, keeps the best checkpoint by a
validation metric and returns it with the validation history (model selection
is part of training: no caller restores checkpoints or reads the log), and stops
with `FloatingPointError` at the first non-finite loss or gradient (the last
good checkpoint stays as it was).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import pathlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsim import built, checkpoint, inference, objectives, parallel, profiling
from jaxsim.models import model_from_config
from jaxsim.objectives import LossFn
from jaxsim.train_config import default_config  # noqa: F401 -- part of this module's API

Inputs = Mapping[str, str | Sequence[str]]

# Phases of `fit` in a profile (`jaxsim.profiling`; `experiments.run --profile`).
_PIPELINE, _STEPS, _CHECKPOINTS = "train: input pipeline", "train: steps", "checkpoints"

PAIR_INPUTS = {"a": "image_a", "b": "image_b"}
SINGLE_INPUTS = {"a": "image"}
IMAGE_TEXT_INPUTS = {"a": "image", "b": ("text_ids", "text_mask")}
# The model inputs of each `data.pipeline.sampler_iterator` kind.
SAMPLER_INPUTS = {"pairs": PAIR_INPUTS, "pxk": SINGLE_INPUTS, "images": SINGLE_INPUTS}

_log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Optimisers


def learning_rate_schedule(cfg: Any) -> optax.Schedule:
  """Linear warmup from 0 to `learning_rate`, then cosine decay or a constant."""
  lr, warmup, steps = cfg.learning_rate, cfg.warmup_steps, cfg.steps
  if cfg.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(
      init_value=0.0,
      peak_value=lr,
      warmup_steps=warmup,
      decay_steps=max(steps, warmup + 1),
      end_value=lr * cfg.final_lr_fraction,
    )
  if cfg.schedule == "constant":
    if warmup == 0:
      return optax.constant_schedule(lr)
    return optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup]
    )
  raise ValueError(f"train.schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")


def weight_decay_mask(params: Any) -> Any:
  """True for the leaves that get weight decay: kernels and embeddings (ndim > 1).

  Biases, batch-norm scales and offsets, and the scalar temperature and bias
  are excluded.
  """
  return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def _per_layer(values: Mapping[str, float], default: float) -> Callable[[Any], Any]:
  """`params -> tree of floats`: the value of the first key that names a path component
  of each leaf (e.g. "Conv_0" for ".../Conv_0/kernel"), else `default`."""

  def tree(params):
    def value(path, _):
      parts = [str(getattr(k, "key", k)) for k in path]
      return next((float(v) for k, v in values.items() if k in parts), default)

    return jax.tree_util.tree_map_with_path(value, params)

  return tree


def per_layer_l2(l2: Mapping[str, float]) -> optax.GradientTransformation:
  """Adds `l2[layer] * param` to the gradient of each kernel (ndim > 1) of that layer."""

  def update(updates, state, params=None):
    coefficients = _per_layer(l2, 0.0)(params)
    return (
      jax.tree.map(
        lambda g, p, c: g + c * p if jnp.ndim(p) > 1 else g, updates, params, coefficients
      ),
      state,
    )

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def per_layer_scale(scales: Mapping[str, float]) -> optax.GradientTransformation:
  """Multiplies the update of each layer's parameters by `scales[layer]` (default 1): a
  per-layer learning rate, as Koch et al. (2015) tuned one per layer."""

  def update(updates, state, params=None):
    factors = _per_layer(scales, 1.0)(updates)
    return jax.tree.map(lambda u, f: u * f, updates, factors), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(cfg: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """Builds the optax optimiser and its learning-rate schedule from the `train` config.

  `adam` and `sgd` use coupled (L2) weight decay added to the gradient; `adamw`
  uses decoupled weight decay (Loshchilov and Hutter 2019). Clipping by the
  global gradient norm comes first. Optional per-layer settings (a mapping from a
  layer's name, a component of its parameter paths such as "Conv_0" or "Dense_0"):
  `layer_l2` adds an L2 penalty per layer to the gradient, `layer_learning_rate_scales`
  scales each layer's learning rate.
  """
  schedule = learning_rate_schedule(cfg)
  chain = []
  if cfg.grad_clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.get("layer_l2"):
    chain.append(per_layer_l2(dict(cfg.layer_l2)))
  if cfg.optimizer == "adamw":
    chain.append(
      optax.adamw(
        schedule, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay, mask=weight_decay_mask
      )
    )
  elif cfg.optimizer in ("adam", "sgd"):
    if cfg.weight_decay > 0:
      chain.append(optax.add_decayed_weights(cfg.weight_decay, mask=weight_decay_mask))
    if cfg.optimizer == "adam":
      chain.append(optax.adam(schedule, b1=cfg.b1, b2=cfg.b2))
    else:
      chain.append(optax.sgd(schedule, momentum=cfg.momentum or None))
  else:
    raise ValueError(f"train.optimizer must be adam, adamw or sgd, got {cfg.optimizer!r}")
  if cfg.get("layer_learning_rate_scales"):
    chain.append(per_layer_scale(dict(cfg.layer_learning_rate_scales)))
  return optax.chain(*chain), schedule


# ---------------------------------------------------------------------------
# State and step


def model_inputs(batch: Mapping[str, Any], inputs: Inputs) -> dict[str, Any]:
  """Picks the model's keyword arguments out of a batch: `{arg: batch[key] or tuple}`."""
  out = {}
  for arg, keys in inputs.items():
    missing = [k for k in ([keys] if isinstance(keys, str) else keys) if k not in batch]
    if missing:
      raise KeyError(f"batch has no {missing} (it has {sorted(batch)}) for model input {arg!r}")
    out[arg] = batch[keys] if isinstance(keys, str) else tuple(batch[k] for k in keys)
  return out


def init_variables(
  model: nn.Module, example_batch: Mapping[str, Any], inputs: Inputs, seed: int
) -> dict[str, Any]:
  """Initialises the model's variables from the first rows of an example batch.

  One jitted program, compiled at XLA's backend optimisation level 1: the same values
  bit for bit as the eager (op by op) init (tested), in about a third of the time an
  eager ResNet-18 init takes in a fresh process (7.6 s against 27.5 s at 48 px on one
  thread), and one program that the persistent cache (`jaxsim.xla_cache`) keeps. At the
  default level 2 the compile took 18 s; init runs once, so its code need not be fast.
  """
  rows = {k: np.asarray(v)[:2] for k, v in example_batch.items()}
  init = shared(
    ("init", model),
    lambda: jax.jit(
      functools.partial(model.init, train=False), compiler_options=INIT_COMPILER_OPTIONS
    ),
  )
  return dict(init(jax.random.key(seed), **model_inputs(rows, inputs)))


# ---------------------------------------------------------------------------
# Programs shared between models built from equal configs

_SHARED = built.BuiltOnce(32)


def shared(key: Any, build: Callable[[], Any]) -> Any:
  """`build()`, or the object an earlier call built for an equal `key` (the last 32).

  A jitted function keeps its compiled programs, so a second model whose init and step
  come from here traces and compiles nothing: face_fp's correlation sweep trains four
  models with the main model's configs. Keys must capture everything the object depends
  on: Flax modules compare by their fields; configs enter through `config_key`.
  """
  try:
    hash(key)
  except TypeError:  # e.g. a module with a list field: built afresh, as before
    return build()
  return _SHARED.get(key, build)


def config_key(cfg: Any, ignore: Sequence[str] = ()) -> str:
  """A config section (ConfigDict or mapping) as canonical JSON, for `shared` keys,
  without the top-level entries named in `ignore`."""
  plain = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
  plain = {k: v for k, v in plain.items() if k not in ignore}
  return json.dumps(plain, sort_keys=True, default=repr)


def _inputs_key(inputs: Inputs) -> tuple:
  return tuple(sorted((k, v if isinstance(v, str) else tuple(v)) for k, v in inputs.items()))


# Compiler options for a model's init: bit-identical values, far shorter compiles.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def create_train_state(
  model: nn.Module,
  optimizer: optax.GradientTransformation,
  example_batch: Mapping[str, Any],
  inputs: Inputs,
  seed: int,
  mesh: jax.sharding.Mesh | None = None,
) -> dict[str, Any]:
  """A fresh train state, replicated over `mesh` when given."""
  variables = init_variables(model, example_batch, inputs, seed)
  params = variables.pop("params")
  state = {
    "step": jnp.zeros((), jnp.int32),
    "params": params,
    "batch_stats": variables.pop("batch_stats", {}),
    "opt_state": optimizer.init(params),
  }
  if variables:
    raise ValueError(f"unsupported model collections {sorted(variables)}")
  return parallel.replicate(state, mesh) if mesh is not None else state


def embedding_statistics(outputs: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
  """Collapse diagnostics for every `embeddings_*` output [B, D].

  `<name>_norm`: mean L2 norm of the rows. `<name>_spread`: root-mean-square
  distance of the unit-normalised rows to their mean, sqrt(1 - |mean unit row|^2);
  0 when all rows point the same way (collapse), near 1 for rows spread over
  the sphere.
  """
  stats = {}
  for key, x in outputs.items():
    if not key.startswith("embeddings") or jnp.ndim(x) != 2:
      continue
    name = "emb" + key[len("embeddings") :]
    x = x.astype(jnp.float32)
    norms = jnp.linalg.norm(x, axis=-1)
    unit = x / jnp.maximum(norms, 1e-12)[:, None]
    centre = jnp.mean(unit, axis=0)
    stats[f"{name}_norm"] = jnp.mean(norms)
    # The mean squared distance to the centre, not 1 - |centre|^2, so that collapse reads 0.
    stats[f"{name}_spread"] = jnp.sqrt(jnp.mean(jnp.sum((unit - centre) ** 2, axis=-1)))
  return stats


def make_train_step(
  model: nn.Module,
  loss_fn: LossFn,
  optimizer: optax.GradientTransformation,
  mesh: jax.sharding.Mesh,
  inputs: Inputs = PAIR_INPUTS,
) -> Callable[[dict, Mapping[str, Any]], tuple[dict, dict[str, jax.Array]]]:
  """Builds `state, metrics = train_step(state, batch)`, jitted once over `mesh`.

  Args:
    model: Flax module called as `model.apply(variables, **inputs, train=True)`.
    loss_fn: `(outputs, batch) -> (scalar loss, dict of scalar aux metrics)`.
      An aux entry `active_fraction` (of pairs or triplets) is logged as is. With a
      `family` attribute (`objectives.objective_from_config`) the step calls
      `family(outputs, batch, hparams)` with the settings as traced arguments, so one
      compiled step serves every member of the family (a margin grid).
    optimizer: optax transformation (see `make_optimizer`).
    mesh: 1-D `data` mesh; the state must be replicated on it.
    inputs: model argument -> batch key(s), e.g. `PAIR_INPUTS`.

  Returns:
    A function taking the (donated) state, a batch, either of global
    `jax.Array`s or of this process's numpy rows (sharded here), and optionally the
    loss settings (`step_hparams`; default: `loss_fn`'s own), and returning
    the new state and a dict of scalar metrics: `loss`, `grad_norm`,
    `finite` (loss and gradient norm both finite), the loss's aux metrics and
    `embedding_statistics`.
  """

  family = getattr(loss_fn, "family", None)

  def step(state, batch, hparams):
    def compute_loss(params):
      variables = {"params": params}
      if state["batch_stats"]:
        variables["batch_stats"] = state["batch_stats"]
      outputs, updates = model.apply(
        variables, **model_inputs(batch, inputs), train=True, mutable=["batch_stats"]
      )
      loss, aux = loss_fn(outputs, batch) if family is None else family(outputs, batch, hparams)
      return loss, (aux, outputs, updates)

    (loss, (aux, outputs, updates)), grads = jax.value_and_grad(compute_loss, has_aux=True)(
      state["params"]
    )
    grad_norm = optax.tree.norm(grads)
    deltas, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
    new_state = {
      "step": state["step"] + 1,
      "params": optax.apply_updates(state["params"], deltas),
      "batch_stats": updates.get("batch_stats", state["batch_stats"]),
      "opt_state": opt_state,
    }
    metrics = {"loss": loss, "grad_norm": grad_norm, **aux, **embedding_statistics(outputs)}
    metrics["finite"] = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    return new_state, metrics

  jitted = jax.jit(
    step,
    in_shardings=(
      parallel.replicated(mesh),
      parallel.batch_sharding(mesh),
      parallel.replicated(mesh),
    ),
    out_shardings=(parallel.replicated(mesh), parallel.replicated(mesh)),
    donate_argnums=0,
  )
  own_hparams = step_hparams(loss_fn)

  def train_step(state, batch, hparams=None):
    if any(not isinstance(v, jax.Array) for v in batch.values()):
      batch = parallel.shard_batch(batch, mesh)
    else:
      parallel.check_global_batch(next(iter(batch.values())).shape[0], mesh)
    return jitted(state, batch, own_hparams if hparams is None else hparams)

  train_step.jitted = jitted
  return train_step


def step_hparams(loss_fn: LossFn) -> dict[str, np.float32]:
  """The loss settings a train step takes as arguments (`objectives.objective_from_config`:
  `loss_fn.hparams`), as float32 scalars; {} for a loss without them."""
  return {k: np.float32(v) for k, v in getattr(loss_fn, "hparams", {}).items()}


# ---------------------------------------------------------------------------
# Logging


class _Progress:
  """A one-line progress bar with ETA on a terminal; otherwise at most one plain line per
  tenth of the run (and the last step), so a log file stays short."""

  def __init__(self, total: int, start: int, stream=None):
    self.total, self.start = total, start
    self.stream = stream if stream is not None else sys.stderr
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self.t0 = time.perf_counter()
    self.tenth = self._tenth(start)

  def _tenth(self, step: int) -> int:
    return step * 10 // max(self.total, 1)

  def update(self, step: int, record: Mapping[str, Any]) -> None:
    if not self.tty:
      if self._tenth(step) <= self.tenth and step < self.total:
        return
      self.tenth = self._tenth(step)
    elapsed = time.perf_counter() - self.t0
    done = step - self.start
    eta = elapsed / done * (self.total - step) if done > 0 else math.nan
    text = f"step {step}/{self.total} loss {record.get('loss', math.nan):.4f} " + (
      f"{record.get('examples_per_sec', 0.0):.1f} ex/s eta {_hms(eta)}"
    )
    if self.tty:
      width = 30
      filled = int(width * step / max(self.total, 1))
      self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}")
      if step >= self.total:
        self.stream.write("\n")
    else:
      self.stream.write(text + "\n")
    self.stream.flush()


def _hms(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _TensorBoard:
  """TensorBoard scalars through tensorboardX when it is installed (no TensorFlow)."""

  def __init__(self, logdir: pathlib.Path):
    try:
      import tensorboardX  # noqa: PLC0415 -- optional dependency
    except ImportError:
      _log.warning("train.tensorboard=True but tensorboardX is not installed; no event files")
      self.writer = None
    else:
      self.writer = tensorboardX.SummaryWriter(str(logdir))

  def write(self, step: int, record: Mapping[str, Any]) -> None:
    if self.writer is None:
      return
    for k, v in record.items():
      if isinstance(v, int | float) and k != "step":
        self.writer.add_scalar(k, v, step)
    self.writer.flush()


def _to_python(metrics: Mapping[str, Any]) -> dict[str, float]:
  out = {}
  for k, v in jax.device_get(dict(metrics)).items():
    v = np.asarray(v)
    out[k] = bool(v) if v.dtype == bool else float(v)
  return out


# ---------------------------------------------------------------------------
# The loop


@dataclasses.dataclass
class FitResult:
  """What `fit` returns.

  Attributes:
    state: the final train state (replicated on the mesh).
    last_metrics: train metrics of the last step (Python floats); after a resume with
      nothing left to run, those of the last step of the earlier run.
    eval_metrics: the last evaluation's metrics ({} without `eval_fn`).
    best_step: the checkpointed step with the best `best_metric` (or None).
    resumed_from: the step training resumed from (0 for a fresh run).
    selected_state: the state model selection keeps: that of `best_step` with a
      `best_metric`, else the final one.
    selected_step: its step.
    history: every evaluation so far, `[{"step": s, **eval_metrics}, ...]`, kept in
      checkpoint records so a resumed run has (and selects on) the whole history.
  """

  state: dict[str, Any]
  last_metrics: dict[str, float]
  eval_metrics: dict[str, float]
  best_step: int | None
  resumed_from: int
  selected_state: dict[str, Any] | None = None
  selected_step: int = 0
  history: list[dict[str, float]] = dataclasses.field(default_factory=list)

  def selection(self, metric: str) -> dict[str, float]:
    """`selected_step`, and `metric` at it, at the first and last evaluations."""
    values = [(int(h["step"]), h[metric]) for h in self.history if metric in h]
    by_step = dict(values)
    return {
      "selected_step": float(self.selected_step),
      "selected_val": by_step.get(self.selected_step, math.nan),
      "first_val": values[0][1] if values else math.nan,
      "last_val": values[-1][1] if values else math.nan,
      "num_evals": float(len(values)),
    }


def fit(
  cfg: Any,
  *,
  model: nn.Module,
  loss_fn: LossFn,
  train_iter: Iterator[Mapping[str, np.ndarray]],
  workdir: str | pathlib.Path,
  inputs: Inputs = PAIR_INPUTS,
  eval_fn: Callable[[dict[str, Any]], Mapping[str, float]] | None = None,
  mesh: jax.sharding.Mesh | None = None,
  log_name: str = "train_log.jsonl",
  checkpoint_dir: str = "checkpoints",
) -> FitResult:
  """Trains `model` for `cfg.steps` steps, resuming from the newest checkpoint.

  Args:
    cfg: the `train` config section (see `default_config`).
    model: Flax module (see `make_train_step`).
    loss_fn: `(outputs, batch) -> (loss, aux)`.
    train_iter: yields this process's rows of each global batch as a dict of
      numpy arrays (process p of P yields rows [p * B / P, (p + 1) * B / P)).
      A Grain `DatasetIterator` (anything with `get_state`/`set_state`) is
      checkpointed with the state, which makes resumption exact; any other
      iterator restarts from its beginning on resume (a warning says so).
    workdir: directory for the JSONL log and the checkpoints.
    inputs: model argument -> batch key(s).
    eval_fn: `state -> dict of floats`, called every `cfg.eval_every` steps
      and after the last step; its `cfg.best_metric` ranks checkpoints.
    mesh: the `data` mesh (default: all devices).
    log_name: file name of the JSONL log inside `workdir`.
    checkpoint_dir: checkpoint subdirectory of `workdir`.

  Returns:
    A `FitResult`.

  Raises:
    FloatingPointError: at the first step whose loss or gradient norm is not
      finite; no checkpoint is written from that step on.
  """
  workdir = pathlib.Path(workdir)
  mesh = mesh if mesh is not None else parallel.data_mesh()
  parallel.check_global_batch(cfg.batch_size, mesh)
  is_chief = jax.process_index() == 0
  # Models built from equal configs (a sweep's, or seeds': the optimizer does not read
  # the seed) share one optimizer object and so one jitted step: the second traces and
  # compiles nothing.
  optimizer, schedule = shared(
    ("optimizer", config_key(cfg, ignore=("seed",))), lambda: make_optimizer(cfg)
  )
  # Losses of one family (a margin grid) share the step; each passes its own settings.
  family = getattr(loss_fn, "family", loss_fn)
  step_key = ("step", model, family, optimizer, mesh, _inputs_key(inputs))
  train_step = shared(step_key, lambda: make_train_step(model, loss_fn, optimizer, mesh, inputs))
  hparams = step_hparams(loss_fn)

  with profiling.phase(_PIPELINE):
    first_batch = next(train_iter)
  local_rows = len(next(iter(first_batch.values())))
  if local_rows * jax.process_count() != cfg.batch_size:
    raise ValueError(
      f"train.batch_size={cfg.batch_size} but the data iterator yields {local_rows} rows per "
      f"process x {jax.process_count()} processes; make them agree"
    )
  with profiling.phase("train: model init"):
    state = create_train_state(model, optimizer, first_batch, inputs, cfg.seed, mesh)
  ckpt = checkpoint.Checkpointer(
    workdir / checkpoint_dir,
    save_every=max(cfg.checkpoint_every, 1),
    keep=cfg.keep_checkpoints,
    best_metric=cfg.best_metric or None,
    best_mode=cfg.best_mode,
    async_save=cfg.async_checkpoints,
  )
  start = ckpt.latest_step() or 0
  stateful = hasattr(train_iter, "get_state")
  history: list[dict[str, float]] = []
  last_metrics: dict[str, float] = {}
  if start:
    with profiling.phase(_CHECKPOINTS):
      state = ckpt.restore(start, state, train_iter if stateful else None)
      saved = ckpt.restore_record(start)
    history = list(saved.get("history", []))
    last_metrics = dict(saved.get("last_train_metrics", {}))
    if stateful:
      first_batch = None  # the restored iterator continues from the checkpoint
    else:
      _log.warning("resuming at step %d with a stateless iterator: data restarts", start)
  if is_chief:
    workdir.mkdir(parents=True, exist_ok=True)
  log_file = open(workdir / log_name, "a") if is_chief else None  # noqa: SIM115
  tensorboard = _TensorBoard(workdir / "tensorboard") if is_chief and cfg.tensorboard else None
  progress = _Progress(cfg.steps, start) if is_chief else None

  def write(record):
    if log_file is not None:
      log_file.write(json.dumps(record) + "\n")
      log_file.flush()
    if tensorboard is not None:
      tensorboard.write(record["step"], record)

  if start:
    write({"step": start, "event": "resumed"})
  eval_metrics: dict[str, float] = dict(history[-1]) if history else {}
  eval_metrics.pop("step", None)
  pending = None  # (step, device metrics) of the step in flight
  window_start, window_steps = time.perf_counter(), 0
  # The best evaluated state of this run, kept on the host: the selected state is then
  # not read back from disk when it is the checkpoint that `ckpt.best_step` ranks first
  # (0.6 s an Orbax restore in face_fp; a resumed run restores when the best is older).
  kept: tuple[tuple[float, int], Any] | None = None

  def settle(step, metrics):
    """Pulls one step's metrics to the host; stops on a non-finite loss or gradient."""
    values = _to_python(metrics)
    if not values.pop("finite"):
      ckpt.wait()  # let earlier (good) checkpoints finish; none is started from here on
      ckpt.close()
      if log_file is not None:
        write({"step": step, "event": "non_finite", **values})
        log_file.close()
      raise FloatingPointError(
        f"non-finite loss or gradient at step {step} (loss={values['loss']}, "
        f"grad_norm={values['grad_norm']}); the last good checkpoint is step "
        f"{ckpt.latest_step()} in {ckpt.directory}"
      )
    return values

  try:
    for step in range(start + 1, cfg.steps + 1):
      with profiling.phase(_PIPELINE):
        batch = first_batch if first_batch is not None else next(train_iter)
      first_batch = None
      with profiling.phase(_STEPS):
        state, metrics = train_step(state, batch, hparams)
        window_steps += 1
        # One step stays in flight: the previous step's metrics are read while this one runs.
        if pending is not None:
          last_metrics = settle(*pending)
      pending = (step, metrics)
      do_eval = eval_fn is not None and (
        step == cfg.steps or (cfg.eval_every and step % cfg.eval_every == 0)
      )
      do_save = step == cfg.steps or bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0)
      do_log = step % max(cfg.log_every, 1) == 0 or step == cfg.steps
      if not (do_eval or do_save or do_log):
        continue
      with profiling.phase(_STEPS):
        last_metrics = settle(*pending)
      pending = None
      record = {"step": step, **last_metrics}
      if do_log:
        elapsed = time.perf_counter() - window_start
        record["learning_rate"] = float(schedule(step - 1))
        record["examples_per_sec"] = window_steps * cfg.batch_size / max(elapsed, 1e-9)
        window_start, window_steps = time.perf_counter(), 0
      if do_eval:
        with profiling.phase("train: selection evaluation"):
          eval_metrics = {k: float(v) for k, v in eval_fn(state).items()}
        history.append({"step": step, **eval_metrics})
        record.update({f"eval/{k}": v for k, v in eval_metrics.items()})
        window_start = time.perf_counter()  # evaluation time is not training throughput
      if do_save:
        with profiling.phase(_CHECKPOINTS):
          ckpt.save(
            step,
            state,
            train_iter if stateful else None,
            eval_metrics if do_eval else None,
            record={"history": history, "last_train_metrics": last_metrics},
            force=True,
          )
          if do_eval and ckpt.best_metric is not None and jax.process_count() == 1:
            rank = (ckpt.rank(eval_metrics), step)
            if kept is None or ckpt.better(rank, kept[0]):
              kept = (rank, jax.tree.map(np.array, state))  # copies: `state` is donated
      if do_log or do_eval:
        write(record)
        if progress is not None:
          progress.update(step, record)
    if pending is not None:
      with profiling.phase(_STEPS):
        last_metrics = settle(*pending)
    with profiling.phase(_CHECKPOINTS):
      ckpt.wait()
      best = ckpt.best_step()
      final_step = int(state["step"])
      selected_step = best if cfg.best_metric and best is not None else final_step
      if selected_step == final_step:
        selected = state
      elif kept is not None and kept[0][1] == selected_step:
        selected = jax.tree.map(lambda h, s: jax.device_put(h, s.sharding), kept[1], state)
      else:
        selected = ckpt.restore(selected_step, state)
  finally:
    with profiling.phase(_CHECKPOINTS):
      ckpt.close()
    if log_file is not None and not log_file.closed:
      log_file.close()
  return FitResult(state, last_metrics, eval_metrics, best, start, selected, selected_step, history)


# ---------------------------------------------------------------------------
# Training with model selection, from configs


def fit_selected(
  cfg: Any,
  *,
  model: nn.Module,
  loss_fn: LossFn,
  train_iter: Iterator[Mapping[str, np.ndarray]],
  workdir: str | pathlib.Path,
  inputs: Inputs,
  eval_fn: Callable[[dict[str, Any]], Mapping[str, float]],
) -> tuple[dict[str, Any], dict[str, float]]:
  """`fit` with validation model selection; returns (selected variables, selection info).

  Requires `cfg.best_metric`, and `cfg.checkpoint_every == cfg.eval_every > 0` so that
  every evaluated step is a checkpoint that can win. The info holds `best_step`,
  `best_val`, `first_val`, `last_val`, `num_evals`, `resumed_from` and `final_<metric>`
  for the last training step's metrics.
  """
  if not cfg.best_metric:
    raise ValueError("train.best_metric must name the validation metric for model selection")
  if cfg.eval_every <= 0 or cfg.checkpoint_every != cfg.eval_every:
    raise ValueError(
      "train.checkpoint_every must equal train.eval_every (> 0) so that every evaluated "
      f"step is a checkpoint; got {cfg.checkpoint_every} and {cfg.eval_every}"
    )
  result = fit(
    cfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=train_iter,
    workdir=workdir,
    inputs=inputs,
    eval_fn=eval_fn,
  )
  sel = result.selection(cfg.best_metric)
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


def fit_model(
  name: str,
  model_cfg: Any,
  loss_cfg: Any,
  cfg: Any,
  train_iter: Iterator[Mapping[str, np.ndarray]],
  inputs: Inputs,
  workdir: str | pathlib.Path,
  eval_fn: Callable[[Any, dict], Mapping[str, float]] | None = None,
) -> tuple[nn.Module, dict[str, Any], dict[str, float]]:
  """Builds a model and its loss from configs and trains (or resumes) it in `workdir / name`.

  With `cfg.best_metric`, `eval_fn(model, variables)` scores it on validation every
  `cfg.eval_every` steps and the best checkpoint's variables are returned
  (`fit_selected`); otherwise the last ones.

  Returns:
    (model, variables for inference, info: `steps`, `steps_this_run`,
    `train_seconds_this_run`, the last train metrics as `final_*` and, with selection,
    `select_*`: best step and validation values).
  """
  model = model_from_config(model_cfg)
  loss_fn = objectives.objective_from_config(loss_cfg)  # equal sections: the same function
  start = time.perf_counter()
  common = {"model": model, "loss_fn": loss_fn, "train_iter": train_iter, "inputs": inputs}
  if cfg.best_metric:
    if eval_fn is None:
      raise ValueError(f"train.best_metric={cfg.best_metric!r} but {name} has no eval_fn")
    variables, select = fit_selected(
      cfg,
      workdir=pathlib.Path(workdir) / name,
      eval_fn=lambda state: eval_fn(model, inference.variables_of(state)),
      **common,
    )
    resumed_from = int(select.pop("resumed_from"))
    extra = {k if k.startswith("final_") else f"select_{k}": v for k, v in select.items()}
  else:
    result = fit(cfg, workdir=pathlib.Path(workdir) / name, **common)
    variables, resumed_from = inference.variables_of(result.state), result.resumed_from
    extra = {f"final_{k}": v for k, v in result.last_metrics.items()}
  seconds = time.perf_counter() - start
  steps_run = cfg.steps - resumed_from
  resumed = f" (resumed from step {resumed_from})" if resumed_from else ""
  print(f"[{name}] {steps_run} steps in {seconds:.1f}s{resumed}", flush=True)
  info = {"steps": float(cfg.steps), "steps_this_run": float(steps_run)}
  return model, variables, {**info, "train_seconds_this_run": seconds, **extra}


def fit_on_records(
  name: str,
  model_cfg: Any,
  loss_cfg: Any,
  cfg: Any,
  source: Any,
  records: np.ndarray,
  workdir: str | pathlib.Path,
  eval_fn: Callable[[Any, dict], Mapping[str, float]] | None = None,
  groups: np.ndarray | None = None,
) -> tuple[nn.Module, dict[str, Any], dict[str, float]]:
  """`fit_model` on batches of `records` of `source`, drawn as `cfg.sampler` says.

  The batches come from `data.pipeline.sampler_iterator` (pairs, PxK or single images,
  this process's shard, checkpointed with the model); `groups` (one per record of the
  source) is for hard within-group PxK batches. Returns what `fit_model` returns.
  """
  from jaxsim.data import pipeline  # noqa: PLC0415 -- the data layer imports no models

  it = pipeline.sampler_iterator(
    source,
    records,
    cfg.sampler,
    cfg.batch_size,
    cfg.seed,
    jax.process_index(),
    jax.process_count(),
    groups=groups,
  )
  inputs = SAMPLER_INPUTS[cfg.sampler.kind]
  return fit_model(name, model_cfg, loss_cfg, cfg, it, inputs, workdir, eval_fn=eval_fn)


def select_on_grid(
  values: Sequence[Any], fit_one: Callable[[Any], tuple]
) -> tuple[Any, tuple, dict]:
  """Fits once per value of a hyperparameter grid; keeps the best on validation.

  `fit_one(value)` returns a tuple whose last item is `fit_selected`'s info; the value
  whose selected checkpoint has the highest ``best_val`` wins (the first on ties).

  Returns:
    (the winning value, its `fit_one` result, ``{value: best_val}`` of every value).
  """
  best, tried = None, {}
  for value in values:
    out = fit_one(value)
    tried[value] = out[-1]["best_val"]
    _log.info("grid value %s: validation %.4f", value, tried[value])
    if best is None or tried[value] > tried[best[0]]:
      best = (value, out)
  return best[0], best[1], tried
