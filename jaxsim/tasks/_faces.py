"""Shared plumbing of the face tasks (`face_verify`, `open_set`): data, training, embedding.

Private to `jaxsim.tasks`. Faces are rendered (or decoded) once into memory, so that
training reads arrays rather than re-rendering every epoch; every random choice
derives from the config's seeds.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jaxsim import inference, objectives, train
from jaxsim.data import pipeline
from jaxsim.data.sources import ArrayImageSource, SyntheticFaces, identity_folder_source
from jaxsim.models import model_from_config
from jaxsim.tasks import _select


def load_faces(data_cfg: Any) -> tuple[ArrayImageSource, list[str], str]:
  """Renders or decodes every face of the configured dataset into memory.

  Reads `data.source` ("synthetic" or "folders"), and for "synthetic"
  `num_identities`, `images_per_identity`, `image_size`, `difficulty`, `data_seed`;
  for "folders" `root` (layout root/<identity>/<image files>), `image_size`, `channels`.

  Returns:
    (in-memory source with modality "face", identity names, a one-line description).
  """
  if data_cfg.source == "synthetic":
    faces = SyntheticFaces(
      data_cfg.num_identities,
      data_cfg.images_per_identity,
      image_size=data_cfg.image_size,
      difficulty=data_cfg.difficulty,
      seed=data_cfg.data_seed,
    )
    names = [f"synthetic_{i:04d}" for i in range(faces.num_identities)]
    what = repr(faces)
  elif data_cfg.source == "folders":
    if not data_cfg.root:
      raise ValueError(
        "data.source='folders' needs data.root=/path/to/faces laid out as "
        "root/<identity>/<image files> (e.g. the AT&T/ORL faces, sN/K.pgm)"
      )
    faces = identity_folder_source(
      data_cfg.root,
      image_size=data_cfg.image_size,
      channels=data_cfg.channels,
      modality="face",
      skip_corrupt=data_cfg.get("skip_corrupt", False),
    )
    names = list(faces.identity_names)
    what = f"{faces!r} from {pathlib.Path(data_cfg.root)}"
  else:
    raise ValueError(f"data.source must be 'synthetic' or 'folders', got {data_cfg.source!r}")
  start = time.perf_counter()
  arrays = inference.load_arrays(faces)
  print(f"loaded {len(faces)} faces ({what}) in {time.perf_counter() - start:.1f}s", flush=True)
  return ArrayImageSource(arrays["image"], arrays["identity"], modality="face"), names, what


def train_iterator(source, records: np.ndarray, sampler: Any, batch_size: int, seed: int):
  """A checkpointable iterator of pair batches or PxK batches of `records`.

  `sampler.kind` is "pairs" (balanced fresh pairs, `positive_fraction`) or "pxk"
  (`p` identities x `k` images; p * k must equal the batch size).
  """
  common = {
    "seed": seed,
    "process_index": jax.process_index(),
    "process_count": jax.process_count(),
  }
  if sampler.kind == "pairs":
    ds = pipeline.pair_batches(
      source,
      records,
      batch_size=batch_size,
      positive_fraction=sampler.positive_fraction,
      augment=sampler.augment,
      **common,
    )
    return pipeline.make_iterator(ds), train.PAIR_INPUTS
  if sampler.kind == "pxk":
    if sampler.p * sampler.k != batch_size:
      raise ValueError(
        f"sampler p * k = {sampler.p} * {sampler.k} must equal train.batch_size = {batch_size}"
      )
    ds = pipeline.pxk_batches(
      source, records, p=sampler.p, k=sampler.k, augment=sampler.augment, **common
    )
    return pipeline.make_iterator(ds), train.SINGLE_INPUTS
  raise ValueError(f"sampler.kind must be 'pairs' or 'pxk', got {sampler.kind!r}")


def train_model(
  name: str,
  model_cfg: Any,
  loss_cfg: Any,
  train_cfg: Any,
  sampler_cfg: Any,
  source,
  records: np.ndarray,
  workdir: pathlib.Path,
  eval_fn: Callable[[Any, dict], Mapping[str, float]] | None = None,
) -> tuple[Any, dict[str, Any], dict[str, float]]:
  """Trains (or resumes, or just restores when finished) one model in `workdir / name`.

  With `train_cfg.best_metric` set, `eval_fn(model, variables)` scores the model on
  validation every `train_cfg.eval_every` steps and the best checkpoint is returned
  (`_select.fit_best`); otherwise the last one.

  Returns:
    (model, variables for inference, a dict with the train metrics, timings and,
    with selection, `select_*` entries: best step and validation values).
  """
  model = model_from_config(model_cfg)
  loss_fn = objectives.objective_from_config(loss_cfg)
  it, inputs = train_iterator(source, records, sampler_cfg, train_cfg.batch_size, train_cfg.seed)
  start = time.perf_counter()
  if train_cfg.best_metric:
    if eval_fn is None:
      raise ValueError(f"train.best_metric={train_cfg.best_metric!r} but {name} has no eval_fn")
    variables, select = _select.fit_best(
      train_cfg,
      model=model,
      loss_fn=loss_fn,
      train_iter=it,
      workdir=workdir / name,
      inputs=inputs,
      eval_fn=lambda state: eval_fn(model, inference.variables_of(state)),
    )
    resumed_from = int(select.pop("resumed_from"))
    extra = {k if k.startswith("final_") else f"select_{k}": v for k, v in select.items()}
  else:
    result = train.fit(
      train_cfg, model=model, loss_fn=loss_fn, train_iter=it, workdir=workdir / name, inputs=inputs
    )
    variables, resumed_from = inference.variables_of(result.state), result.resumed_from
    extra = {f"final_{k}": v for k, v in result.last_metrics.items()}
  seconds = time.perf_counter() - start
  steps_run = train_cfg.steps - resumed_from
  info = {
    "steps": float(train_cfg.steps),
    "steps_this_run": float(steps_run),
    "train_seconds_this_run": seconds,
    **extra,
  }
  resumed = f" (resumed from step {resumed_from})" if resumed_from else ""
  print(f"[{name}] {steps_run} steps in {seconds:.1f}s{resumed}", flush=True)
  return model, variables, info


def embed_timed(model, variables, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
  """Embeddings of `images` and the images per second (after a compile on one batch)."""
  inference.embed(model, variables, images[:1], batch_size=batch_size)
  start = time.perf_counter()
  emb = inference.embed(model, variables, images, batch_size=batch_size)
  return emb, len(images) / max(time.perf_counter() - start, 1e-9)
