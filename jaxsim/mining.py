"""In-batch pair and triplet masks and hard-example mining.

Everything works on a `[B, B]` distance matrix and integer identity labels
`[B]`, with masks instead of boolean indexing, so that it is jit- and
vmap-compatible and the batch size stays static. An optional `where: [B]`
marks which rows are real examples (for example to ignore padding); masked
rows take part in no pair or triplet.

This module imports JAX only, so other projects can use it on its own.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def check_embeddings_and_labels(
  embeddings: jax.Array, labels: jax.Array, name: str, where: jax.Array | None = None
) -> None:
  """Raises a ValueError unless embeddings are `[B, D]` and labels integer `[B]`."""
  if embeddings.ndim != 2:
    raise ValueError(f"{name}: embeddings must be [batch, dim], got shape {embeddings.shape}")
  if not jnp.issubdtype(embeddings.dtype, jnp.floating):
    raise ValueError(f"{name}: embeddings must be floating point, got {embeddings.dtype}")
  check_labels(labels, embeddings.shape[0], name, where)


def check_labels(labels: jax.Array, batch: int, name: str, where: jax.Array | None = None) -> None:
  """Raises a ValueError unless labels are integer identities of shape `[batch]`."""
  if labels.shape != (batch,):
    raise ValueError(f"{name}: labels must have shape ({batch},), got {labels.shape}")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
      f"{name}: labels must be integer identity ids, got dtype {labels.dtype}; "
      "cast them with labels.astype(jnp.int32)"
    )
  if where is not None and jnp.shape(where) != (batch,):
    raise ValueError(f"{name}: where must have shape ({batch},), got {jnp.shape(where)}")


def _valid_pairs(batch: int, where: jax.typing.ArrayLike | None) -> jax.Array:
  if where is None:
    return jnp.ones((batch, batch), dtype=bool)
  where = jnp.asarray(where, dtype=bool)
  return where[:, None] & where[None, :]


def positive_mask(
  labels: jax.typing.ArrayLike, where: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """`[B, B]` mask of (i, j) with the same label and i != j."""
  labels = jnp.asarray(labels)
  batch = labels.shape[0]
  same = labels[:, None] == labels[None, :]
  return same & ~jnp.eye(batch, dtype=bool) & _valid_pairs(batch, where)


def negative_mask(
  labels: jax.typing.ArrayLike, where: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """`[B, B]` mask of (i, j) with different labels."""
  labels = jnp.asarray(labels)
  return (labels[:, None] != labels[None, :]) & _valid_pairs(labels.shape[0], where)


def triplet_mask(
  labels: jax.typing.ArrayLike, where: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """`[B, B, B]` mask of valid triplets (a, p, n): label(a) = label(p) != label(n), a != p."""
  return positive_mask(labels, where)[:, :, None] & negative_mask(labels, where)[:, None, :]


class BatchHardTriplets(NamedTuple):
  """Per-anchor hardest positive and negative (Hermans, Beyer, Leibe 2017).

  Attributes:
    positive: `[B]` index of the farthest positive of each anchor.
    negative: `[B]` index of the closest negative of each anchor.
    valid: `[B]` whether the anchor has at least one positive and one negative;
      the indices of invalid anchors are meaningless.
  """

  positive: jax.Array
  negative: jax.Array
  valid: jax.Array


def batch_hard_triplets(
  distances: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  where: jax.typing.ArrayLike | None = None,
) -> BatchHardTriplets:
  """Mines the hardest positive and hardest negative for every anchor.

  Args:
    distances: `[B, B]` distances (smaller = more similar).
    labels: `[B]` integer identities.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    A `BatchHardTriplets` of `[B]` arrays.

  Reference:
    Hermans, Beyer, Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. arXiv:1703.07737, 2017.
  """
  distances = jnp.asarray(distances)
  pos = positive_mask(labels, where)
  neg = negative_mask(labels, where)
  positive = jnp.argmax(jnp.where(pos, distances, -jnp.inf), axis=1)
  negative = jnp.argmin(jnp.where(neg, distances, jnp.inf), axis=1)
  valid = jnp.any(pos, axis=1) & jnp.any(neg, axis=1)
  return BatchHardTriplets(positive, negative, valid)


class SemiHardNegatives(NamedTuple):
  """Negatives chosen for each (anchor, positive) pair.

  Attributes:
    negative: `[B, B]` index of the negative chosen for pair (a, p).
    semi_hard: `[B, B]` whether that negative is farther than the positive
      (a semi-hard or easy negative) rather than the fallback.
    valid: `[B, B]` whether (a, p) is a positive pair with at least one negative.
  """

  negative: jax.Array
  semi_hard: jax.Array
  valid: jax.Array


def semi_hard_negatives(
  distances: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  where: jax.typing.ArrayLike | None = None,
) -> SemiHardNegatives:
  """Mines a semi-hard negative for every positive pair (FaceNet).

  For the pair (a, p) the chosen negative is the closest negative that is
  farther from the anchor than the positive, `d(a, n) > d(a, p)`. Where no such
  negative exists, it is the farthest negative of the anchor, as in
  TensorFlow Addons' `triplet_semihard_loss`, the usual reference
  implementation.

  Args:
    distances: `[B, B]` distances (smaller = more similar).
    labels: `[B]` integer identities.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    A `SemiHardNegatives` of `[B, B]` arrays indexed by (anchor, positive).

  Reference:
    Schroff, Kalenichenko, Philbin. FaceNet: A Unified Embedding for Face
    Recognition and Clustering. CVPR 2015.
  """
  distances = jnp.asarray(distances)
  pos = positive_mask(labels, where)
  neg = negative_mask(labels, where)
  d_an = distances[:, None, :]  # [a, 1, n]
  d_ap = distances[:, :, None]  # [a, p, 1]
  farther = neg[:, None, :] & (d_an > d_ap)  # [a, p, n]
  closest_farther = jnp.argmin(jnp.where(farther, d_an, jnp.inf), axis=-1)
  semi_hard = jnp.any(farther, axis=-1)
  farthest = jnp.argmax(jnp.where(neg, distances, -jnp.inf), axis=-1)  # [a]
  negative = jnp.where(semi_hard, closest_farther, farthest[:, None])
  valid = pos & jnp.any(neg, axis=1)[:, None]
  return SemiHardNegatives(negative, semi_hard & valid, valid)
