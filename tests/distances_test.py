"""Distances: hand values, agreement between pairwise and matched forms, safe gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jitted import check_grads

from jaxsim import distances


def test_hand_values():
  x = jnp.array([[0.0, 0.0], [1.0, 0.0]])
  y = jnp.array([[3.0, 4.0], [0.0, 2.0]])
  np.testing.assert_allclose(distances.euclidean_distance(x, y), [5.0, np.sqrt(5.0)], rtol=1e-6)
  np.testing.assert_allclose(distances.squared_euclidean_distance(x, y), [25.0, 5.0])
  # cos(x[1], y[1]) = 0; x[0] is the zero vector, whose similarity is defined as 0.
  np.testing.assert_allclose(distances.cosine_similarity(x, y), [0.0, 0.0], atol=1e-7)
  np.testing.assert_allclose(
    distances.cosine_similarity(jnp.array([1.0, 1.0]), jnp.array([2.0, 0.0])),
    1 / np.sqrt(2),
    rtol=1e-6,
  )


def test_pairwise_matches_matched_form():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(5, 7)), rng.normal(size=(4, 7))
  expected = np.linalg.norm(x[:, None] - y[None], axis=-1)
  np.testing.assert_allclose(distances.pairwise_euclidean_distances(x, y), expected, rtol=1e-5)
  np.testing.assert_allclose(
    distances.pairwise_squared_euclidean_distances(x, y), expected**2, rtol=1e-5
  )
  cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (
    y / np.linalg.norm(y, axis=1, keepdims=True)
  ).T
  np.testing.assert_allclose(distances.pairwise_cosine_similarity(x, y), cos, rtol=1e-5)
  np.testing.assert_allclose(distances.pairwise_distances(x, y, "cosine"), 1 - cos, rtol=1e-5)


def test_self_distances_have_exact_zero_diagonal():
  x = jax.random.normal(jax.random.key(0), (16, 32)) * 100.0
  d = distances.pairwise_euclidean_distances(x)
  np.testing.assert_array_equal(np.diag(d), 0.0)


@pytest.mark.parametrize(
  "fn",
  [
    distances.euclidean_distance,
    distances.squared_euclidean_distance,
    distances.cosine_similarity,
  ],
)
def test_finite_gradient_for_identical_inputs(fn):
  x = jnp.array([[0.3, -0.2, 0.5]])
  gx, gy = jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(x, x)
  assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))


def test_finite_gradient_pairwise_with_duplicate_rows():
  x = jnp.array([[0.3, -0.2], [0.3, -0.2], [1.0, 2.0]])
  g = jax.grad(lambda a: jnp.sum(distances.pairwise_euclidean_distances(a)))(x)
  assert np.all(np.isfinite(g))


def test_check_grads_away_from_zero():
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    x, y = jnp.asarray(rng.normal(size=(3, 4))), jnp.asarray(rng.normal(size=(3, 4)))
    check_grads(distances.euclidean_distance, (x, y), order=2, modes=["rev"])
    check_grads(distances.cosine_similarity, (x, y), order=1, modes=["rev"])
    check_grads(
      lambda a, b: distances.pairwise_euclidean_distances(a, b), (x, y), order=1, modes=["rev"]
    )


def test_shape_errors():
  with pytest.raises(ValueError, match="same shape"):
    distances.euclidean_distance(jnp.zeros((3, 2)), jnp.zeros((3, 4)))
  with pytest.raises(ValueError, match="feature dimensions"):
    distances.pairwise_euclidean_distances(jnp.zeros((3, 2)), jnp.zeros((3, 4)))
  with pytest.raises(ValueError, match=r"\[N, D\]"):
    distances.pairwise_cosine_similarity(jnp.zeros((3,)))
  with pytest.raises(ValueError, match="unknown distance metric"):
    distances.pairwise_distances(jnp.zeros((3, 2)), metric="manhattan")
