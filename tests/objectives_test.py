"""Objectives bind the right loss to the right batch layout."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import losses, objectives

RNG = np.random.default_rng(0)
A = jnp.asarray(RNG.normal(size=(8, 4)), jnp.float32)
B = jnp.asarray(RNG.normal(size=(8, 4)), jnp.float32)
IDS = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
LABEL = jnp.array([1, 0, 1, 0, 1, 0, 1, 0])


@pytest.mark.parametrize("name", objectives.OBJECTIVES)
def test_every_objective_gives_a_finite_scalar(name):
  outputs = {
    "embeddings_a": A,
    "embeddings_b": B,
    "logits": A[:, 0],
    "log_temperature": jnp.array(2.3),
    "bias": jnp.array(-10.0),
    "proxies": B[:4],
  }
  batch = {"identity": IDS, "label": LABEL}
  cfg = {"name": name, "margin": 0.5}
  if name == "sum":
    cfg["terms"] = {"a": {"name": "batch_hard"}, "b": {"name": "normalized_softmax"}}
  loss, aux = objectives.objective_from_config(cfg)(outputs, batch)
  assert loss.shape == () and np.isfinite(loss)
  assert all(np.isfinite(v) for v in aux.values())


def test_equal_sections_give_one_function_so_models_share_a_step():
  import ml_collections

  plain = {"name": "sum", "terms": {"t": {"name": "batch_hard", "margin": 0.2}}}
  first = objectives.objective_from_config(plain)
  same = objectives.objective_from_config(ml_collections.ConfigDict(plain))
  assert same is first
  other = objectives.objective_from_config(
    {"name": "sum", "terms": {"t": {"name": "batch_hard", "margin": 0.3}}}
  )
  assert other is not first


def test_proxy_objective_without_proxies_names_the_setting():
  fn = objectives.objective_from_config({"name": "normalized_softmax", "margin": 0.1})
  with pytest.raises(ValueError, match="num_proxies"):
    fn({"embeddings_a": A}, {"identity": IDS})


def test_pair_contrastive_matches_loss_library():
  fn = objectives.objective_from_config({"name": "pair_contrastive", "margin": 2.0})
  loss, _ = fn({"embeddings_a": A, "embeddings_b": B}, {"label": LABEL})
  d = jnp.linalg.norm(A - B, axis=-1)
  np.testing.assert_allclose(loss, jnp.mean(losses.contrastive_loss(d, LABEL, 2.0)), rtol=1e-6)


def test_two_tower_in_batch_loss_stacks_both_towers():
  fn = objectives.objective_from_config({"name": "batch_hard", "margin": 0.2})
  loss, aux = fn({"embeddings_a": A, "embeddings_b": B}, {"identity": IDS})
  expected = losses.batch_hard_triplet_loss(
    jnp.concatenate([A, B]), jnp.concatenate([IDS, IDS]), margin=0.2
  )
  np.testing.assert_allclose([loss, aux["active_fraction"]], expected, rtol=1e-6)


def test_clip_uses_learned_temperature():
  fn = objectives.objective_from_config({"name": "clip"})
  loss, _ = fn(
    {"embeddings_a": A, "embeddings_b": B, "log_temperature": jnp.log(2.0)}, {"identity": IDS}
  )
  np.testing.assert_allclose(loss, losses.clip_loss(A, B, 0.5, IDS), rtol=1e-6)


def test_unknown_objective():
  with pytest.raises(ValueError, match="loss.name"):
    objectives.objective_from_config({"name": "arcface"})


def test_sum_is_the_weighted_sum_of_its_terms_with_their_aux():
  outputs = {"embeddings_a": A, "proxies": B[:4]}
  batch = {"identity": IDS}
  cosface = {"name": "normalized_softmax", "scale": 16.0, "margin": 0.2}
  triplet = {"name": "batch_hard", "margin": 0.2, "distance": "cosine"}
  fn = objectives.objective_from_config(
    {"name": "sum", "terms": {"cosface": cosface, "triplet": {**triplet, "weight": 0.5}}}
  )
  loss, aux = fn(outputs, batch)
  c, c_aux = objectives.objective_from_config(cosface)(outputs, batch)
  t, t_aux = objectives.objective_from_config(triplet)(outputs, batch)
  np.testing.assert_allclose(loss, c + 0.5 * t, rtol=1e-6)
  assert aux["cosface_loss"] == c and aux["triplet_loss"] == t
  assert aux["cosface_proxy_accuracy"] == c_aux["proxy_accuracy"]
  assert aux["triplet_active_fraction"] == t_aux["active_fraction"]
  assert objectives.uses_proxies({"name": "sum", "terms": {"c": cosface, "t": triplet}})
  assert not objectives.uses_proxies({"name": "sum", "terms": {"t": triplet}})


def test_sum_without_terms_or_nested_names_the_setting():
  with pytest.raises(ValueError, match="loss.terms"):
    objectives.objective_from_config({"name": "sum"})
  with pytest.raises(ValueError, match="loss.terms.inner"):
    objectives.objective_from_config({"name": "sum", "terms": {"inner": {"name": "sum"}}})
