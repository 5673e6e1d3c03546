"""A tiny but real training run, launched as a subprocess by the resume and multi-process tests.

    python -m tests._train_worker --workdir=DIR --out=FILE.npz [--steps=N] [--step_delay=S]

Trains a small batch-norm CNN in a Siamese model with an in-batch contrastive
loss on an in-memory dataset read through a Grain MapDataset iterator (whose
state is checkpointed), and writes the final parameters, batch statistics and
metrics to `--out`. With JAXSIM_DISTRIBUTED=1 it first calls
`jaxsim.parallel.initialize_distributed()` and each process feeds its own rows
of every global batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

NUM_EXAMPLES = 48
IMAGE_SHAPE = (8, 8, 1)


def pair_contrastive_loss(outputs, batch, margin=1.0):
  """jaxsim's in-batch contrastive loss over all pairs of the (global) batch."""
  from jaxsim import losses  # noqa: PLC0415

  loss, active = losses.in_batch_contrastive_loss(
    outputs["embeddings_a"], batch["identity"], margin=margin
  )
  return loss, {"active_fraction": active}


def dataset(seed: int = 0):
  rng = np.random.default_rng(seed)
  identities = np.arange(NUM_EXAMPLES) % 6
  means = rng.uniform(0.2, 0.8, size=(6, *IMAGE_SHAPE))
  images = np.clip(means[identities] + 0.1 * rng.normal(size=(NUM_EXAMPLES, *IMAGE_SHAPE)), 0, 1)
  return [
    {"image": images[i].astype(np.float32), "identity": np.int32(identities[i])}
    for i in range(NUM_EXAMPLES)
  ]


def train_iterator(global_batch: int, process_index: int, process_count: int):
  import grain  # noqa: PLC0415

  rows = global_batch // process_count
  lo, hi = process_index * rows, (process_index + 1) * rows
  ds = (
    grain.MapDataset.source(dataset())
    .seed(1)
    .shuffle()
    .repeat(None)
    .batch(global_batch, drop_remainder=True)
    .map(lambda b: {k: v[lo:hi] for k, v in b.items()})
  )
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)))


def build_model():
  from jaxsim import models  # noqa: PLC0415

  return models.SiameseModel(models.DigitCNN(features=(4, 8), hidden=16, dim=8))


def train_config(steps: int, checkpoint_every: int, batch_size: int):
  from jaxsim import train  # noqa: PLC0415

  cfg = train.default_config()
  cfg.steps = steps
  cfg.batch_size = batch_size
  cfg.learning_rate = 3e-3
  cfg.warmup_steps = 2
  cfg.weight_decay = 1e-4
  cfg.optimizer = "adamw"
  cfg.grad_clip_norm = 1.0
  cfg.log_every = 1
  cfg.eval_every = 4
  cfg.checkpoint_every = checkpoint_every
  cfg.keep_checkpoints = 2
  cfg.best_metric = "val_loss"
  cfg.best_mode = "min"
  return cfg


def main(argv=None) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--steps", type=int, default=16)
  parser.add_argument("--checkpoint_every", type=int, default=4)
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--devices", type=int, default=1)
  parser.add_argument("--step_delay", type=float, default=0.0)
  args = parser.parse_args(argv)

  import jax  # noqa: PLC0415

  jax.config.update("jax_num_cpu_devices", args.devices)
  from jaxsim import parallel, train  # noqa: PLC0415

  if os.environ.get("JAXSIM_DISTRIBUTED") == "1":
    parallel.initialize_distributed()

  model = build_model()
  eval_batch = {k: np.stack([r[k] for r in dataset()[:16]]) for k in ("image", "identity")}

  def eval_fn(state):
    variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
    outputs = model.apply(variables, eval_batch["image"], train=False)
    loss, _ = pair_contrastive_loss(outputs, eval_batch)
    return {"val_loss": float(loss)}

  inner = train_iterator(args.batch_size, jax.process_index(), jax.process_count())

  class Slow:
    """Delays each batch so that a test can kill the run partway; keeps Grain's state API."""

    def __next__(self):
      time.sleep(args.step_delay)
      return next(inner)

    def get_state(self):
      return inner.get_state()

    def set_state(self, state):
      inner.set_state(state)

  result = train.fit(
    train_config(args.steps, args.checkpoint_every, args.batch_size),
    model=model,
    loss_fn=pair_contrastive_loss,
    train_iter=Slow() if args.step_delay else inner,
    workdir=args.workdir,
    inputs=train.SINGLE_INPUTS,
    eval_fn=eval_fn,
    mesh=parallel.data_mesh(),
  )
  if jax.process_index() == 0:
    flat = {
      jax.tree_util.keystr(path): np.asarray(leaf)
      for path, leaf in jax.tree_util.tree_leaves_with_path(
        {"params": result.state["params"], "batch_stats": result.state["batch_stats"]}
      )
    }
    metrics = {
      "last": result.last_metrics,
      "eval": result.eval_metrics,
      "best_step": result.best_step,
      "resumed_from": result.resumed_from,
    }
    np.savez(args.out, metrics=json.dumps(metrics), **flat)
  print("done", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
