"""Chunked inference equals one direct model call, for any number of rows."""

import _jitted
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import inference, models


def _model_and_vars(kind="siamese"):
  enc = {"name": "face_auth_cnn", "features": (4, 8), "dim": 6}
  cfg = (
    {"kind": kind, "encoder": enc}
    if kind == "siamese"
    else {"kind": "two_tower", "encoder_a": enc, "encoder_b": dict(enc, dim=6)}
  )
  model = models.model_from_config(cfg)
  x = np.random.default_rng(0).random((11, 8, 8, 3), dtype=np.float32)
  variables = _jitted.init(model, jax.random.key(0), x[:2], x[:2], train=False)
  return model, variables, x


@pytest.mark.parametrize("batch_size", [4, 11, 32])
def test_embed_matches_direct_apply(batch_size):
  model, variables, x = _model_and_vars()
  direct = _jitted.apply(model, variables, x, train=False)["embeddings_a"]
  np.testing.assert_allclose(
    inference.embed(model, variables, x, batch_size=batch_size), direct, rtol=1e-5, atol=1e-6
  )


def test_two_tower_embeds_each_tower_alone():
  model, variables, x = _model_and_vars("two_tower")
  both = _jitted.apply(model, variables, x, x, train=False)
  np.testing.assert_allclose(
    inference.embed(model, variables, x, tower="b", batch_size=4),
    both["embeddings_b"],
    rtol=1e-5,
    atol=1e-6,
  )


def test_pair_logits_of_koch_model():
  model = models.model_from_config({"kind": "koch"})
  x = np.random.default_rng(1).random((5, 105, 105, 1), dtype=np.float32)
  variables = _jitted.init(model, jax.random.key(0), x[:2], x[:2], train=False)
  logits, rate = inference.pair_logits(model, variables, x, x[::-1], batch_size=4)
  direct = _jitted.apply(model, variables, x, x[::-1], train=False)["logits"]
  np.testing.assert_allclose(logits, direct, rtol=1e-4, atol=1e-5)
  assert rate > 0


def test_errors():
  model, variables, x = _model_and_vars()
  with pytest.raises(ValueError, match="tower"):
    inference.embed(model, variables, x, tower="c")
  with pytest.raises(ValueError, match="different numbers of rows"):
    inference.predict(model, variables, {"a": x, "b": x[:3]}, "embeddings_a")


def test_shifted_moves_pixels_and_fills_zeros():
  x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1) + 1
  y = inference.shifted(x, 1, -2)
  np.testing.assert_array_equal(y[0, 1:, :2, 0], x[0, :3, 2:, 0])
  assert np.all(y[0, 0] == 0) and np.all(y[0, :, 2:] == 0)
  np.testing.assert_array_equal(inference.shifted(x, 0, 0), x)


def test_shift_averaged_embedding_is_the_mean_over_shifts():
  class Sum(nn.Module):  # embedding = pixel sums of the left and the right half
    @nn.compact
    def __call__(self, a, b=None, train=False):
      return {
        "embeddings_a": jnp.stack([a[:, :, :2].sum((1, 2, 3)), a[:, :, 2:].sum((1, 2, 3))], 1)
      }

  x = np.zeros((1, 4, 4, 1), np.float32)
  x[0, 1, 1] = 1.0  # one pixel, left half
  model = Sum()
  e = inference.embed_shift_averaged(model, {}, x, 1, batch_size=4)
  # Of the 9 shifts, dx = -1, 0 keep it left (6), dx = +1 moves it right (3).
  np.testing.assert_allclose(e, [[6 / 9, 3 / 9]])
  # Radius 2 in steps of 2: shifts -2, 0, 2; dy = -2 and dx = -2 drop the pixel.
  e = inference.embed_shift_averaged(model, {}, x, 2, batch_size=4, step=2)
  np.testing.assert_allclose(e, [[2 / 9, 2 / 9]])
  with pytest.raises(ValueError, match="must be a multiple of the step"):
    inference.embed_shift_averaged(model, {}, x, 3, batch_size=4, step=2)


def test_flip_averaged_embedding_is_mirror_invariant_unit_and_in_score_pairs():
  model, variables, x = _model_and_vars()
  e = inference.embed_flip_averaged(model, variables, x, batch_size=4)
  mirrored = inference.embed_flip_averaged(model, variables, x[:, :, ::-1], batch_size=4)
  np.testing.assert_allclose(e, mirrored, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
  a, b = np.arange(5), np.arange(5, 10)
  scores, _ = inference.score_pairs(model, variables, x, a, b, "cosine", 4, tta="flip")
  np.testing.assert_allclose(scores, np.sum(e[a] * e[b], axis=1), atol=1e-5)
  with pytest.raises(ValueError, match="tta"):
    inference.score_pairs(model, variables, x, a, b, "cosine", 4, tta="rotate")
  with pytest.raises(ValueError, match="pair head"):
    inference.score_pairs(model, variables, x, a, b, "pair_head", 4, tta="flip")
