"""Losses: hand-computed values, gradients, jit, permutation invariance, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _jitted import check_grads

from jaxsim import losses

# The constructed batch of mining_test.py: points 0, 1, 3, 6 on a line, labels 0 0 1 1.
EMB = jnp.array([[0.0], [1.0], [3.0], [6.0]])
LABELS = jnp.array([0, 0, 1, 1])


def test_contrastive_hand_values():
  d = jnp.array([0.5, 0.5, 1.5])
  y = jnp.array([1, 0, 0])
  np.testing.assert_allclose(losses.contrastive_loss(d, y, margin=1.0), [0.25, 0.25, 0.0])
  # Margin 2 on the unit sphere: a negative at distance sqrt(2) still costs (2 - sqrt 2)^2.
  np.testing.assert_allclose(
    losses.contrastive_loss(jnp.array([np.sqrt(2)]), jnp.array([0]), margin=2.0),
    [(2 - np.sqrt(2)) ** 2],
    rtol=1e-6,
  )


def test_triplet_margin_hand_values():
  a = jnp.zeros((2, 2))
  p = jnp.array([[3.0, 4.0], [0.0, 2.0]])
  n = jnp.array([[6.0, 8.0], [1.0, 0.0]])
  np.testing.assert_allclose(losses.triplet_margin_loss(a, p, n, margin=1.0), [0.0, 2.0])
  np.testing.assert_allclose(
    losses.triplet_margin_loss(a, p, n, soft=True), np.log1p(np.exp([-5.0, 1.0])), rtol=1e-6
  )
  np.testing.assert_allclose(
    losses.triplet_margin_loss(a, p, n, margin=0.0, distance="squared_euclidean"), [0.0, 3.0]
  )


def test_triplet_margin_l1_would_need_abs():
  # optax's norm_degree=1 sums signed differences; ours is a real distance, so
  # swapping the sign of a coordinate difference cannot change the loss.
  a = jnp.zeros((1, 2))
  n = jnp.array([[1.0, 1.0]])
  left = losses.triplet_margin_loss(a, jnp.array([[1.0, -1.0]]), n)
  right = losses.triplet_margin_loss(a, jnp.array([[-1.0, 1.0]]), n)
  np.testing.assert_allclose(left, right)


def test_pair_bce_hand_values():
  out = losses.pair_bce_loss(jnp.array([0.0, 2.0, -50.0]), jnp.array([1, 0, 1]))
  np.testing.assert_allclose(out, [np.log(2.0), np.log1p(np.exp(2.0)), 50.0], rtol=1e-5)


def test_batch_hard_hand_values():
  loss, frac = losses.batch_hard_triplet_loss(EMB, LABELS, margin=2.0)
  # Per anchor: relu(1-3+2)=0, relu(1-2+2)=1, relu(3-2+2)=3, relu(3-5+2)=0.
  np.testing.assert_allclose([loss, frac], [1.0, 0.5])
  loss, _ = losses.batch_hard_triplet_loss(EMB, LABELS, margin=2.0, reduction="mean_active")
  np.testing.assert_allclose(loss, 2.0)
  loss, frac = losses.batch_hard_triplet_loss(EMB, LABELS, soft=True)
  np.testing.assert_allclose(loss, np.mean(np.log1p(np.exp([-2.0, -1.0, 1.0, -2.0]))), rtol=1e-6)
  np.testing.assert_allclose(frac, 0.25)


def test_batch_all_hand_values():
  # Valid triplet terms: 0, 0, 1, 0, 2, 3, 0, 0 (8 valid, 3 active).
  loss, frac = losses.batch_all_triplet_loss(EMB, LABELS, margin=2.0)
  np.testing.assert_allclose([loss, frac], [2.0, 3 / 8])
  loss, _ = losses.batch_all_triplet_loss(EMB, LABELS, margin=2.0, reduction="mean")
  np.testing.assert_allclose(loss, 0.75)


def test_semi_hard_hand_values():
  # Positive pairs: (0,1) 0, (1,0) 1, (2,3) fallback 2, (3,2) 0.
  loss, frac = losses.semi_hard_triplet_loss(EMB, LABELS, margin=2.0)
  np.testing.assert_allclose([loss, frac], [0.75, 0.5])


def test_in_batch_contrastive_hand_values():
  # Positives d^2: 1, 1, 9, 9 -> 5. Negatives relu(4-d)^2 over ordered pairs:
  # d = 3, 6, 2, 5 twice -> (1 + 0 + 4 + 0) * 2 / 8 = 1.25.
  loss, frac = losses.in_batch_contrastive_loss(EMB, LABELS, margin=4.0)
  np.testing.assert_allclose([loss, frac], [6.25, 8 / 12])
  loss, _ = losses.in_batch_contrastive_loss(EMB, LABELS, margin=4.0, reduction="mean_active")
  np.testing.assert_allclose(loss, 5.0 + 2.5)


def test_clip_hand_values():
  eye = jnp.eye(2)
  np.testing.assert_allclose(
    losses.clip_loss(eye, eye, temperature=1.0), np.log1p(np.exp(-1)), rtol=1e-6
  )
  # Same label twice: both columns are matches, target (1/2, 1/2).
  np.testing.assert_allclose(
    losses.clip_loss(eye, eye, temperature=1.0, labels=jnp.array([0, 0])),
    np.log1p(np.e) - 0.5,
    rtol=1e-6,
  )


def test_siglip_hand_values():
  eye = jnp.eye(2)
  np.testing.assert_allclose(
    losses.siglip_loss(eye, eye, log_temperature=0.0, bias=0.0),
    np.log1p(np.exp(-1)) + np.log(2.0),
    rtol=1e-6,
  )


def test_reduce_terms_empty_is_zero():
  loss, frac = losses.reduce_terms(jnp.ones(3), jnp.zeros(3, bool))
  assert float(loss) == 0.0 and float(frac) == 0.0


BATCH_LOSSES = {
  "contrastive": functools.partial(losses.in_batch_contrastive_loss, margin=1.0),
  "batch_all": functools.partial(losses.batch_all_triplet_loss, margin=0.5),
  "batch_all_soft": functools.partial(losses.batch_all_triplet_loss, soft=True),
  "batch_hard": functools.partial(losses.batch_hard_triplet_loss, margin=0.5),
  "batch_hard_soft": functools.partial(losses.batch_hard_triplet_loss, soft=True),
  "semi_hard": functools.partial(losses.semi_hard_triplet_loss, margin=0.5),
  "semi_hard_cosine": functools.partial(
    losses.semi_hard_triplet_loss, margin=0.5, distance="cosine"
  ),
}


def _pxk_batch(seed=0, p=4, k=3, dim=5):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(p * k, dim)) * 0.5, np.repeat(np.arange(p), k)


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_batch_loss_gradients(name):
  emb, labels = _pxk_batch()
  with jax.enable_x64(True):
    fn = lambda e: BATCH_LOSSES[name](e, jnp.asarray(labels))[0]
    check_grads(fn, (jnp.asarray(emb),), order=1, modes=["rev"])


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_batch_loss_finite_gradient_with_identical_embeddings(name):
  emb, labels = _pxk_batch()
  emb[1] = emb[0]  # same identity, zero distance
  emb[3] = emb[0]  # different identity, zero distance
  g = jax.jit(jax.grad(lambda e: BATCH_LOSSES[name](e, jnp.asarray(labels))[0]))(jnp.asarray(emb))
  assert np.all(np.isfinite(g))


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_batch_loss_jit_and_permutation(name):
  emb, labels = _pxk_batch(seed=3)
  fn = BATCH_LOSSES[name]
  eager = fn(jnp.asarray(emb), jnp.asarray(labels))
  jitted = jax.jit(fn)(jnp.asarray(emb), jnp.asarray(labels))
  np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-6)
  perm = np.random.default_rng(1).permutation(len(labels))
  permuted = fn(jnp.asarray(emb[perm]), jnp.asarray(labels[perm]))
  np.testing.assert_allclose(eager, permuted, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(BATCH_LOSSES))
def test_batch_loss_vmaps_over_batches(name):
  embs = np.stack([_pxk_batch(seed=s)[0] for s in range(3)])
  labels = _pxk_batch()[1]
  fn = lambda e: BATCH_LOSSES[name](e, jnp.asarray(labels))
  stacked = jax.vmap(fn)(jnp.asarray(embs))
  for i in range(3):
    np.testing.assert_allclose(
      [stacked[0][i], stacked[1][i]], fn(jnp.asarray(embs[i])), rtol=1e-5, atol=1e-6
    )


def test_where_ignores_padding_rows():
  emb, labels = _pxk_batch()
  padded = np.concatenate([emb, np.full((2, emb.shape[1]), 100.0)])
  padded_labels = np.concatenate([labels, [0, 9]])
  where = np.arange(len(padded_labels)) < len(labels)
  for name, fn in BATCH_LOSSES.items():
    jitted = jax.jit(fn)  # one program per shape, not one per operation
    np.testing.assert_allclose(
      jitted(jnp.asarray(padded), jnp.asarray(padded_labels), where=jnp.asarray(where)),
      jitted(jnp.asarray(emb), jnp.asarray(labels)),
      rtol=1e-5,
      atol=1e-6,
      err_msg=name,
    )


def test_pair_and_two_tower_gradients():
  rng = np.random.default_rng(2)
  with jax.enable_x64(True):
    a, b, c = (jnp.asarray(rng.normal(size=(4, 3))) for _ in range(3))
    y = jnp.array([1, 0, 1, 0])
    check_grads(
      lambda x, z: losses.contrastive_loss(jnp.linalg.norm(x - z, axis=-1), y, margin=3.0),
      (a, b),
      order=1,
      modes=["rev"],
    )
    check_grads(
      lambda x, z, w: losses.triplet_margin_loss(x, z, w, margin=5.0),
      (a, b, c),
      order=1,
      modes=["rev"],
    )
    check_grads(lambda x: losses.pair_bce_loss(x, y), (a[:, 0],), order=2, modes=["rev"])
    check_grads(lambda x, z: losses.clip_loss(x, z, 0.5), (a, b), order=2, modes=["rev"])
    check_grads(
      lambda x, z, t, s: losses.siglip_loss(x, z, t, s), (a, b, 0.3, -1.0), order=2, modes=["rev"]
    )


def test_pair_losses_finite_gradient_at_identical_pair():
  from jaxsim import distances  # noqa: PLC0415

  x = jnp.array([[0.1, 0.2, 0.3]])
  for y in (jnp.array([1]), jnp.array([0])):
    g = jax.grad(
      lambda a, b, y=y: jnp.sum(
        losses.contrastive_loss(distances.euclidean_distance(a, b), y, margin=1.0)
      ),
      argnums=(0, 1),
    )(x, x)
    assert all(np.all(np.isfinite(t)) for t in g)
  g = jax.grad(lambda a: jnp.sum(losses.triplet_margin_loss(a, a, a + 1.0)))(x)
  assert np.all(np.isfinite(g))


def test_bad_inputs_raise_clear_errors():
  emb, labels = _pxk_batch()
  with pytest.raises(ValueError, match="integer identity ids"):
    losses.batch_hard_triplet_loss(emb, labels.astype(np.float32))
  with pytest.raises(ValueError, match=r"labels must have shape \(12,\)"):
    losses.batch_all_triplet_loss(emb, labels[:5])
  with pytest.raises(ValueError, match=r"\[batch, dim\]"):
    losses.semi_hard_triplet_loss(emb[:, 0], labels)
  with pytest.raises(ValueError, match="floating point"):
    losses.in_batch_contrastive_loss(emb.astype(np.int32), labels)
  with pytest.raises(ValueError, match="unknown reduction"):
    losses.batch_hard_triplet_loss(emb, labels, reduction="sum")
  with pytest.raises(ValueError, match="unknown distance"):
    losses.batch_hard_triplet_loss(emb, labels, distance="l1")
  with pytest.raises(ValueError, match="integer or bool"):
    losses.contrastive_loss(jnp.ones(3), jnp.ones(3))
  with pytest.raises(ValueError, match="same shape"):
    losses.triplet_margin_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), jnp.ones((2, 2)))
  with pytest.raises(ValueError, match="same shape"):
    losses.clip_loss(jnp.ones((3, 2)), jnp.ones((4, 2)))
  with pytest.raises(ValueError, match="labels must have shape"):
    losses.siglip_loss(jnp.ones((3, 2)), jnp.ones((3, 2)), 0.0, 0.0, labels=jnp.ones(2, int))
  with pytest.raises(ValueError, match="labels must have shape"):
    losses.pair_bce_loss(jnp.ones(3), jnp.ones(2))


def test_prototypical_loss_matches_leave_one_out_prototypes_by_hand():
  rng = np.random.default_rng(0)
  e = rng.normal(size=(12, 5)).astype(np.float32)
  y = np.array([0, 0, 0, 3, 3, 3, 7, 7, 7, 1, 1, 9])  # class 9 has one row: not a query
  expected, correct = [], []
  classes = [0, 3, 7, 1, 9]
  for i in range(11):
    logits = []
    for c in classes:
      rows = (y == c) & (np.arange(12) != i)
      logits.append(-np.sum((e[i] - e[rows].mean(0)) ** 2))
    logits = np.array(logits)
    own = classes.index(y[i])
    expected.append(np.log(np.exp(logits).sum()) - logits[own])
    correct.append(np.argmax(logits) == own)
  loss, accuracy = losses.prototypical_loss(e, y)
  np.testing.assert_allclose(loss, np.mean(expected), rtol=1e-5)
  np.testing.assert_allclose(accuracy, np.mean(correct), rtol=1e-6)
  # Separated classes: every query finds its own prototype, the loss goes to 0.
  far = np.repeat(np.eye(4, dtype=np.float32) * 50, 3, axis=0)
  loss, accuracy = losses.prototypical_loss(far, np.repeat(np.arange(4), 3))
  assert float(accuracy) == 1.0 and float(loss) < 1e-6


def test_sampled_proxies_cover_the_batch_and_equal_the_softmax_over_the_sample():
  # Jitted (the class counts fix shapes): a few programs instead of one per operation.
  sampled_classes = jax.jit(losses.sampled_classes, static_argnums=(1, 2))
  softmax = jax.jit(losses.normalized_softmax_loss, static_argnames="num_sampled")
  rng = np.random.default_rng(0)
  e = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
  p = jnp.asarray(rng.normal(size=(40, 5)), jnp.float32)
  labels = jnp.array([3, 3, 17, 25, 39, 0])
  classes = np.asarray(sampled_classes(labels, 40, 8))
  assert len(set(classes.tolist())) == 8 and {0, 3, 17, 25, 39} <= set(classes.tolist())
  np.testing.assert_array_equal(sampled_classes(labels, 40, 8), classes)  # a function
  other = np.asarray(sampled_classes(labels[::-1], 40, 8))
  assert set(other.tolist()) != set(classes.tolist())  # another batch, another draw
  loss, acc = softmax(e, p, labels, 16.0, 0.1, num_sampled=8)
  # The same as the full loss over the sampled proxies, labels renumbered into them.
  inside = jnp.asarray([int(np.flatnonzero(classes == y)[0]) for y in labels])
  ref_loss, ref_acc = softmax(e, p[classes], inside, 16.0, 0.1)
  np.testing.assert_allclose([loss, acc], [ref_loss, ref_acc], rtol=1e-6)
  # Only the sampled proxies get a gradient; K >= C is the full loss.
  grad = jax.grad(lambda q: softmax(e, q, labels, num_sampled=8)[0])(p)
  touched = np.flatnonzero(np.abs(np.asarray(grad)).sum(1) > 0)
  assert set(touched.tolist()) <= set(classes.tolist())
  full = softmax(e, p, labels, 16.0, 0.1)
  np.testing.assert_allclose(softmax(e, p, labels, num_sampled=40), full)
  with pytest.raises(ValueError, match="num_sampled=4 is below the batch size 6"):
    losses.normalized_softmax_loss(e, p, labels, num_sampled=4)
