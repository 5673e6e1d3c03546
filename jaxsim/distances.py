"""Distances and similarities between embeddings, for matched pairs and all pairs.

Matched-pair functions take `x, y` of the same shape `[..., D]` and return `[...]`.
All-pairs functions take `x: [N, D]` and optionally `y: [M, D]` (default `y = x`)
and return `[N, M]`. Everything is pure, jit- and vmap-compatible, and has finite
gradients everywhere, including at zero distance (an image paired with itself).

This module imports JAX only, so other projects can use it on its own.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Below this squared distance the Euclidean distance is reported as exactly 0 and
# its gradient as 0 (a valid subgradient of the norm at 0). Without the guard,
# d sqrt(u)/du = 1 / (2 sqrt(u)) is infinite at u = 0 and NaN after the chain rule.
_SQRT_GUARD = 1e-12
# Smallest norm used when normalising for cosine similarity (avoids 0 / 0).
NORM_EPS = 1e-12


def _check_matched(x: jax.Array, y: jax.Array, name: str) -> None:
  if x.shape != y.shape:
    raise ValueError(f"{name}: x and y must have the same shape, got {x.shape} and {y.shape}")
  if x.ndim < 1:
    raise ValueError(f"{name}: inputs need a trailing feature axis, got shape {x.shape}")


def _check_all_pairs(x: jax.Array, y: jax.Array, name: str) -> None:
  if x.ndim != 2 or y.ndim != 2:
    raise ValueError(f"{name}: x and y must be [N, D] and [M, D], got {x.shape} and {y.shape}")
  if x.shape[1] != y.shape[1]:
    raise ValueError(f"{name}: feature dimensions differ: {x.shape[1]} vs {y.shape[1]}")


def safe_sqrt(squared: jax.typing.ArrayLike) -> jax.Array:
  """Square root with value and gradient 0 at (numerically) zero input.

  Uses the double-`where` pattern so that the untaken branch never produces
  an infinite gradient that would turn into NaN.
  """
  squared = jnp.asarray(squared)
  positive = squared > _SQRT_GUARD
  return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1.0)), 0.0)


def squared_euclidean_distance(x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> jax.Array:
  """Squared Euclidean distance between matched pairs.

  Args:
    x: `[..., D]` embeddings.
    y: `[..., D]` embeddings, the same shape as `x`.

  Returns:
    `[...]` squared distances `sum((x - y)^2)`.
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  _check_matched(x, y, "squared_euclidean_distance")
  return jnp.sum(jnp.square(x - y), axis=-1)


def euclidean_distance(x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> jax.Array:
  """Euclidean distance between matched pairs, with finite gradients at zero.

  Args:
    x: `[..., D]` embeddings.
    y: `[..., D]` embeddings, the same shape as `x`.

  Returns:
    `[...]` distances `||x - y||_2`; 0 (with gradient 0) where `x == y`.
  """
  return safe_sqrt(squared_euclidean_distance(x, y))


def cosine_similarity(x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> jax.Array:
  """Cosine similarity between matched pairs, in [-1, 1].

  Args:
    x: `[..., D]` embeddings (any norm; zero vectors give similarity 0).
    y: `[..., D]` embeddings, the same shape as `x`.

  Returns:
    `[...]` similarities `<x, y> / (||x|| ||y||)`.
  """
  x, y = jnp.asarray(x), jnp.asarray(y)
  _check_matched(x, y, "cosine_similarity")
  return jnp.sum(l2_normalize(x) * l2_normalize(y), axis=-1)


def cosine_distance(x: jax.typing.ArrayLike, y: jax.typing.ArrayLike) -> jax.Array:
  """`1 - cosine_similarity(x, y)`, in [0, 2]."""
  return 1.0 - cosine_similarity(x, y)


def l2_normalize(x: jax.typing.ArrayLike, axis: int = -1) -> jax.Array:
  """Scales `x` to unit L2 norm along `axis`; zero vectors stay zero."""
  x = jnp.asarray(x)
  norm = safe_sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
  return x / jnp.maximum(norm, NORM_EPS)


def pairwise_squared_euclidean_distances(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """All-pairs squared Euclidean distances.

  Computed as `|x|^2 + |y|^2 - 2 <x, y>` (one matmul), clipped at 0 because
  rounding can make it slightly negative. With `y=None` the diagonal is set to
  exactly 0, so an embedding's distance to itself is not a rounding residue.

  Args:
    x: `[N, D]` embeddings.
    y: `[M, D]` embeddings, or None for `y = x`.

  Returns:
    `[N, M]` squared distances.
  """
  x = jnp.asarray(x)
  same = y is None
  y = x if same else jnp.asarray(y)
  _check_all_pairs(x, y, "pairwise_squared_euclidean_distances")
  sq = (
    jnp.sum(jnp.square(x), axis=1)[:, None]
    + jnp.sum(jnp.square(y), axis=1)[None, :]
    - 2.0 * x @ y.T
  )
  sq = jnp.maximum(sq, 0.0)
  if same:
    sq = jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, sq)
  return sq


def pairwise_euclidean_distances(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """All-pairs Euclidean distances `[N, M]`, with finite gradients at zero.

  Args:
    x: `[N, D]` embeddings.
    y: `[M, D]` embeddings, or None for `y = x`.

  Returns:
    `[N, M]` distances. In float32 the matmul form is accurate to about 1e-3 for
    near-identical unit vectors; use `euclidean_distance` on matched pairs when
    tiny distances matter.
  """
  return safe_sqrt(pairwise_squared_euclidean_distances(x, y))


def pairwise_cosine_similarity(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike | None = None
) -> jax.Array:
  """All-pairs cosine similarities `[N, M]`.

  Args:
    x: `[N, D]` embeddings.
    y: `[M, D]` embeddings, or None for `y = x`.

  Returns:
    `[N, M]` similarities in [-1, 1].
  """
  x = jnp.asarray(x)
  y = x if y is None else jnp.asarray(y)
  _check_all_pairs(x, y, "pairwise_cosine_similarity")
  return l2_normalize(x) @ l2_normalize(y).T


def pairwise_distances(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike | None = None, metric: str = "euclidean"
) -> jax.Array:
  """All-pairs distances by name: `euclidean`, `squared_euclidean` or `cosine`.

  `cosine` gives the cosine distance `1 - cos`, so that for every metric a
  smaller value means more similar.
  """
  if metric == "euclidean":
    return pairwise_euclidean_distances(x, y)
  if metric == "squared_euclidean":
    return pairwise_squared_euclidean_distances(x, y)
  if metric == "cosine":
    return 1.0 - pairwise_cosine_similarity(x, y)
  raise ValueError(
    f"unknown distance metric {metric!r}; use 'euclidean', 'squared_euclidean' or 'cosine'"
  )
