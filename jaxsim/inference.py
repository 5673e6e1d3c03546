"""Batched inference: embeddings and pair logits over whole evaluation splits.

Every task evaluates the same way: take the trained variables, run the model
with `train=False` over a split in fixed-size chunks (the last one padded, so
there is a single compiled shape), and return numpy arrays for the pure metric
functions in `jaxsim.evaluate`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Inputs = Mapping[str, Any]  # model argument -> array [N, ...] or tuple of arrays


def variables_of(state: Mapping[str, Any]) -> dict[str, Any]:
  """The Flax variables (`params`, and `batch_stats` if any) of a train state."""
  variables = {"params": state["params"]}
  if state.get("batch_stats"):
    variables["batch_stats"] = state["batch_stats"]
  return variables


@functools.partial(jax.jit, static_argnums=(0, 3))
def _apply(model: nn.Module, variables, inputs, output: str) -> jax.Array:
  return model.apply(variables, **inputs, train=False)[output]


def _rows(x: Any) -> int:
  return len(x[0]) if isinstance(x, tuple | list) else len(x)


def _slice(x: Any, start: int, size: int) -> Any:
  """Rows [start, start + size) of an array or tuple of arrays, zero-padded to `size`."""
  if isinstance(x, tuple | list):
    return tuple(_slice(t, start, size) for t in x)
  chunk = np.asarray(x[start : start + size])
  if len(chunk) < size:
    pad = np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)
    chunk = np.concatenate([chunk, pad])
  return chunk


def predict(
  model: nn.Module,
  variables: Mapping[str, Any],
  inputs: Inputs,
  output: str,
  batch_size: int = 256,
) -> np.ndarray:
  """Runs `model.apply(variables, **inputs, train=False)[output]` in chunks.

  Args:
    model: a Flax module returning a dict of outputs (see `jaxsim.models`).
    variables: `{"params": ..., ["batch_stats": ...]}` (see `variables_of`).
    inputs: model argument -> `[N, ...]` array, or a tuple of such arrays for
      encoders with several inputs (text: `(text_ids, text_mask)`).
    output: the output key to collect (`embeddings_a`, `logits`, ...).
    batch_size: rows per call; every call has this shape.

  Returns:
    `[N, ...]` float32 numpy array.
  """
  sizes = {_rows(x) for x in inputs.values()}
  if len(sizes) != 1:
    raise ValueError(f"predict: inputs have different numbers of rows: {sorted(sizes)}")
  (n,) = sizes
  if n == 0:
    raise ValueError("predict: no rows to run the model on")
  out = []
  for start in range(0, n, batch_size):
    chunk = {k: _slice(v, start, batch_size) for k, v in inputs.items()}
    out.append(_apply(model, variables, chunk, output))
  return np.concatenate([np.asarray(o, np.float32) for o in out])[:n]


def embed(
  model: nn.Module,
  variables: Mapping[str, Any],
  x: Any,
  tower: str = "a",
  batch_size: int = 256,
) -> np.ndarray:
  """Embeddings `[N, D]` of `x` through tower `a` or `b` of the model.

  A Siamese model has one (shared) tower, `a`; a two-tower model embeds
  modality A with `tower="a"` and modality B with `tower="b"`.
  """
  if tower not in ("a", "b"):
    raise ValueError(f"tower must be 'a' or 'b', got {tower!r}")
  return predict(model, variables, {tower: x}, f"embeddings_{tower}", batch_size)


def shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
  """`images` [N, H, W, C] translated by (dy, dx) pixels, zeros shifted in."""
  out = np.zeros_like(images)
  h, w = images.shape[1:3]
  out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
    :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
  ]
  return out


def embed_shift_averaged(
  model: nn.Module,
  variables: Mapping[str, Any],
  images: np.ndarray,
  radius: int,
  batch_size: int,
  step: int = 1,
) -> np.ndarray:
  """Test-time augmentation: the mean embedding over the translations of `images` by
  -radius, -radius + step, ..., radius pixels in each direction ((2 radius / step + 1)^2
  copies; radius 0: `embed`). A step > 1 keeps the copies few on large images."""
  if step < 1 or radius % step:
    raise ValueError(f"shift radius {radius} must be a multiple of the step {step} >= 1")
  shifts = range(-radius, radius + 1, step)
  total = None
  for dy in shifts:
    for dx in shifts:
      e = embed(model, variables, shifted(images, dy, dx), batch_size=batch_size)
      total = e if total is None else total + e
  return total / len(shifts) ** 2


def embed_pairs(
  model: nn.Module,
  variables: Mapping[str, Any],
  images_a: np.ndarray,
  images_b: np.ndarray,
  a: np.ndarray,
  b: np.ndarray,
  towers: tuple[str, str] = ("a", "b"),
  batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
  """Embeddings of both sides of the pairs (images_a[a[i]], images_b[b[i]]): ([P, D], [P, D]).

  Each distinct image is embedded once (once for both sides when `images_b is images_a`
  and both go through the same tower, as for a Siamese verifier's pair list).
  """
  a, b = np.asarray(a), np.asarray(b)
  if images_b is images_a and towers[0] == towers[1]:
    used = np.unique(np.concatenate([a, b]))
    e = embed(model, variables, images_a[used], towers[0], batch_size)
    return e[np.searchsorted(used, a)], e[np.searchsorted(used, b)]
  used_a, used_b = np.unique(a), np.unique(b)
  ea = embed(model, variables, images_a[used_a], towers[0], batch_size)
  eb = embed(model, variables, images_b[used_b], towers[1], batch_size)
  return ea[np.searchsorted(used_a, a)], eb[np.searchsorted(used_b, b)]


def pair_logits(
  model: nn.Module,
  variables: Mapping[str, Any],
  images_a: np.ndarray,
  images_b: np.ndarray,
  batch_size: int = 256,
) -> tuple[np.ndarray, float]:
  """Logits `[N]` of a pair model (Koch's L1 head) and the pairs per second."""
  predict(model, variables, {"a": images_a[:1], "b": images_b[:1]}, "logits", batch_size)
  start = time.perf_counter()  # after compilation: throughput, not compile time
  logits = predict(model, variables, {"a": images_a, "b": images_b}, "logits", batch_size)
  return logits, len(logits) / (time.perf_counter() - start)


def pair_logits_check(
  model: nn.Module,
  variables: Mapping[str, Any],
  images: np.ndarray,
  index_a: np.ndarray,
  index_b: np.ndarray,
  head_logits: np.ndarray,
  batch_size: int = 256,
) -> dict[str, float]:
  """Both images of each pair through the whole pair network (`pair_logits`): its
  pairs per second, and the largest difference from `head_logits`, the same pairs'
  logits from features computed once per image (`score_pairs` with "pair_head")."""
  direct, rate = pair_logits(model, variables, images[index_a], images[index_b], batch_size)
  return {
    "pair_logits_pairs": float(len(direct)),
    "pair_logits_pairs_per_second": rate,
    "pair_logits_max_abs_diff": float(np.max(np.abs(direct - np.asarray(head_logits)))),
  }


def embed_flip_averaged(
  model: nn.Module, variables: Mapping[str, Any], images: np.ndarray, batch_size: int
) -> np.ndarray:
  """Test-time augmentation: the sum of the unit embeddings of `images` [N, H, W, C] and
  of their mirror images, normalised to unit length (for faces, never for fingerprints)."""

  def unit(e):
    return e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)

  e = unit(embed(model, variables, images, batch_size=batch_size))
  e = e + unit(embed(model, variables, images[:, :, ::-1], batch_size=batch_size))
  return unit(e)


TTA = ("none", "flip")


def embed_timed(
  model, variables, images: np.ndarray, batch_size: int, tta: str = "none"
) -> tuple[np.ndarray, float]:
  """Embeddings of `images` and the images per second (after a compile on one batch).

  `tta` "flip" averages each image's embedding with its mirror image's
  (`embed_flip_averaged`); the rate then counts each image once.
  """
  if tta not in TTA:
    raise ValueError(f"tta must be one of {TTA}, got {tta!r}")
  embed(model, variables, images[:1], batch_size=batch_size)
  start = time.perf_counter()
  if tta == "flip":
    emb = embed_flip_averaged(model, variables, images, batch_size)
  else:
    emb = embed(model, variables, images, batch_size=batch_size)
  return emb, len(images) / max(time.perf_counter() - start, 1e-9)


def embed_records(
  model, variables, images: np.ndarray, records: np.ndarray, batch_size: int
) -> tuple[Callable[[np.ndarray], np.ndarray], dict[str, float]]:
  """Embeds each of `records` (indices into `images`) once; a lookup by record index.

  Returns:
    ``(emb, timing)``: ``emb(r)`` gives the [len(r), D] embeddings of record indices `r`
    (each must be in `records`); ``timing`` has ``images_per_second`` (`embed_timed`)
    and ``num_images``.
  """
  needed = np.unique(np.asarray(records))
  rows, images_per_s = embed_timed(model, variables, images[needed], batch_size)
  row = np.full(len(images), -1, np.int64)
  row[needed] = np.arange(len(needed))

  def emb(r):
    index = row[np.asarray(r)]
    if np.any(index < 0):
      raise KeyError("embed_records: a record index that was not embedded")
    return rows[index]

  return emb, {"images_per_second": images_per_s, "num_images": float(len(needed))}


def pair_head_logits(
  model, variables, features: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 8192
) -> np.ndarray:
  """Logits of pairs (a[i], b[i]) from per-image features [M, D] (a, b index `features`).

  The model's own pair head (its `pair_logits` method, e.g. `KochSiameseModel`'s
  w . |h_a - h_b| + b), applied in fixed-size chunks so that it compiles once.
  """
  head = jax.jit(functools.partial(model.apply, method=model.pair_logits))
  feats = jnp.asarray(features)
  out = np.empty(len(a), np.float32)
  for start in range(0, len(a), chunk):
    ia = np.zeros(chunk, np.int64)
    ib = np.zeros(chunk, np.int64)
    stop = min(start + chunk, len(a))
    ia[: stop - start], ib[: stop - start] = a[start:stop], b[start:stop]
    out[start:stop] = np.asarray(head(variables, feats[ia], feats[ib]))[: stop - start]
  return out


def score_pairs(
  model,
  variables,
  images: np.ndarray,
  a: np.ndarray,
  b: np.ndarray,
  score: str,
  batch_size: int,
  tta: str = "none",
) -> tuple[np.ndarray, dict[str, float]]:
  """Scores (higher = same) of pairs (images[a[i]], images[b[i]]), and throughput figures.

  Every image is embedded once. `score` is "pair_head" for a pair model (its own head
  on the features, `pair_head_logits`) or a similarity of `evaluate.search`
  ("cosine", "euclidean", ...) for an embedding model; `tta` is `embed_timed`'s
  (embedding models only).
  """
  from jaxsim.evaluate import search  # noqa: PLC0415 -- evaluate imports no models

  if score == "pair_head" and tta != "none":
    raise ValueError(f"tta={tta!r} is for embedding models; a pair head scores raw features")
  start = time.perf_counter()
  feats, images_per_s = embed_timed(model, variables, images, batch_size, tta)
  embed_s = time.perf_counter() - start
  start = time.perf_counter()
  if score == "pair_head":
    scores = pair_head_logits(model, variables, feats, a, b)
  else:
    scores = search.matched_scores(feats[a], feats[b], score)
  score_s = time.perf_counter() - start
  return scores, {
    "num_pairs": float(len(a)),
    "num_images_embedded": float(len(images)),
    "images_per_second": images_per_s,
    "pairs_per_second": len(a) / max(len(images) / images_per_s + score_s, 1e-9),
    "pair_scoring_seconds": score_s,
    "wall_seconds": embed_s + score_s,
  }


def class_prototypes(
  model, variables, inputs, classes: np.ndarray, tower: str, batch_size: int
) -> np.ndarray:
  """[C, D] unit-norm mean embedding of each class 0..C-1 (e.g. every text naming a digit)."""
  emb = embed(model, variables, inputs, tower, batch_size)
  classes = np.asarray(classes)
  protos = np.stack([emb[classes == c].mean(0) for c in range(int(classes.max()) + 1)])
  return protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)
