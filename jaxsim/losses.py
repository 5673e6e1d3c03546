"""Metric-learning losses: pairs, triplets, in-batch mining and two-tower losses.

Conventions, used throughout jaxsim:
- Pair labels: 1 = same identity (a positive pair), 0 = different (a negative pair).
- Distances: smaller = more similar. Embeddings are not normalised here; models
  L2-normalise them when the recipe says so.
- Per-example functions (`contrastive_loss`, `triplet_margin_loss`,
  `pair_bce_loss`) return one value per pair or triplet; the caller reduces.
- In-batch functions take `embeddings: [B, D]` and integer `labels: [B]` and
  return `(loss, active_fraction)`: the scalar loss and the fraction of valid
  terms that are active (hinge violated), so that saturation (fraction near 0:
  nothing left to learn, or collapse hidden by an easy margin) and collapse
  (fraction near 1 with equal distances) are visible in the training log.
- Reductions: `"mean"` averages over all valid terms, `"mean_active"` over the
  active ones only (pytorch-metric-learning's AvgNonZeroReducer; the "BA+"
  variant of Hermans et al.).
- Two-tower losses take matched rows `a[i] <-> b[i]` and return a scalar.

This module imports JAX and optax only, so other projects can use it alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxsim import distances as dist_lib
from jaxsim import mining

REDUCTIONS = ("mean", "mean_active")
_DISTANCES = ("euclidean", "squared_euclidean", "cosine")


def _check_reduction(reduction: str) -> None:
  if reduction not in REDUCTIONS:
    raise ValueError(f"unknown reduction {reduction!r}; use one of {REDUCTIONS}")


def _check_distance(distance: str) -> None:
  if distance not in _DISTANCES:
    raise ValueError(f"unknown distance {distance!r}; use one of {_DISTANCES}")


def reduce_terms(
  terms: jax.typing.ArrayLike,
  valid: jax.typing.ArrayLike,
  reduction: str = "mean",
  active: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Reduces masked loss terms to a scalar and reports the active fraction.

  Args:
    terms: loss terms, any shape.
    valid: bool mask of the same shape; invalid terms are ignored.
    reduction: `"mean"` (over valid terms) or `"mean_active"` (over active terms).
    active: bool mask of active terms; default `terms > 0`.

  Returns:
    `(loss, active_fraction)`, both scalars; 0 when there is no valid term.
  """
  _check_reduction(reduction)
  terms = jnp.asarray(terms)
  valid = jnp.asarray(valid, dtype=bool)
  active = (terms > 0) if active is None else jnp.asarray(active, dtype=bool)
  active = active & valid
  total = jnp.sum(jnp.where(valid, terms, 0.0))
  num_valid = jnp.sum(valid)
  num_active = jnp.sum(active)
  denominator = num_valid if reduction == "mean" else num_active
  loss = total / jnp.maximum(denominator, 1)
  return loss, num_active / jnp.maximum(num_valid, 1)


def _check_pair_labels(labels: jax.Array, shape: tuple[int, ...], name: str) -> None:
  if labels.shape != shape:
    raise ValueError(f"{name}: labels must have shape {shape}, got {labels.shape}")
  if not (jnp.issubdtype(labels.dtype, jnp.integer) or labels.dtype == jnp.bool_):
    raise ValueError(
      f"{name}: pair labels must be integer or bool (1 = same, 0 = different), "
      f"got dtype {labels.dtype}"
    )


def contrastive_loss(
  distances: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, margin: float = 1.0
) -> jax.Array:
  """Contrastive loss per pair: `y d^2 + (1 - y) max(0, margin - d)^2`.

  Args:
    distances: `[...]` non-negative pair distances (e.g. `euclidean_distance`).
    labels: `[...]` integer or bool, 1 = same identity, 0 = different.
    margin: negatives closer than this are pushed apart. On L2-normalised
      embeddings distances are at most 2, so `margin >= 2` makes every negative
      active until it reaches the antipode.

  Returns:
    `[...]` per-pair losses.

  Reference:
    Hadsell, Chopra, LeCun. Dimensionality Reduction by Learning an Invariant
    Mapping. CVPR 2006. (The paper writes Y = 0 for similar pairs and a factor
    1/2; jaxsim uses y = 1 for similar pairs and no factor.)
  """
  distances = jnp.asarray(distances)
  labels = jnp.asarray(labels)
  _check_pair_labels(labels, distances.shape, "contrastive_loss")
  same = labels.astype(distances.dtype)
  return same * jnp.square(distances) + (1.0 - same) * jnp.square(jax.nn.relu(margin - distances))


def _matched_distance(x: jax.Array, y: jax.Array, distance: str) -> jax.Array:
  _check_distance(distance)
  if distance == "euclidean":
    return dist_lib.euclidean_distance(x, y)
  if distance == "squared_euclidean":
    return dist_lib.squared_euclidean_distance(x, y)
  return dist_lib.cosine_distance(x, y)


def triplet_margin_loss(
  anchors: jax.typing.ArrayLike,
  positives: jax.typing.ArrayLike,
  negatives: jax.typing.ArrayLike,
  margin: float = 1.0,
  soft: bool = False,
  distance: str = "euclidean",
) -> jax.Array:
  """Triplet loss per explicit triplet: `max(0, d(a, p) - d(a, n) + margin)`.

  Unlike `optax.losses.triplet_margin_loss`, distances are exact (no epsilon
  inside the root) and the gradient is finite when `a == p`; optax's
  `norm_degree=1` path also sums signed differences without an absolute value,
  which is not a distance.

  Args:
    anchors: `[..., D]` embeddings.
    positives: `[..., D]` embeddings of the anchors' identities.
    negatives: `[..., D]` embeddings of other identities.
    margin: required gap between negative and positive distances (ignored
      when `soft`). Default 1.0, as in torch.nn.TripletMarginLoss and optax.
    soft: use the soft margin `log(1 + exp(d(a, p) - d(a, n)))` instead.
    distance: `"euclidean"`, `"squared_euclidean"` or `"cosine"` (1 - cos).

  Returns:
    `[...]` per-triplet losses.

  Reference:
    Weinberger, Saul. Distance Metric Learning for Large Margin Nearest
    Neighbor Classification. JMLR 2009; soft margin: Hermans et al. 2017.
  """
  anchors, positives, negatives = map(jnp.asarray, (anchors, positives, negatives))
  if not anchors.shape == positives.shape == negatives.shape:
    raise ValueError(
      "triplet_margin_loss: anchors, positives and negatives must have the same shape, got "
      f"{anchors.shape}, {positives.shape}, {negatives.shape}"
    )
  gap = _matched_distance(anchors, positives, distance) - _matched_distance(
    anchors, negatives, distance
  )
  return jax.nn.softplus(gap) if soft else jax.nn.relu(gap + margin)


def pair_bce_loss(logits: jax.typing.ArrayLike, labels: jax.typing.ArrayLike) -> jax.Array:
  """Binary cross-entropy per pair on "same identity" logits.

  For the Koch et al. L1 pair head: `logit = w . |f(x1) - f(x2)| + b`, so
  `sigmoid(logit)` is the match probability. Computed from logits with
  `optax.sigmoid_binary_cross_entropy` (log-sigmoid form, stable for large
  |logit|, unlike `log(sigmoid(x))`).

  Args:
    logits: `[...]` pair logits.
    labels: `[...]` 1 = same, 0 = different (integer, bool, or float in [0, 1]
      for soft targets).

  Returns:
    `[...]` per-pair losses.

  Reference:
    Koch, Zemel, Salakhutdinov. Siamese Neural Networks for One-shot Image
    Recognition. ICML Deep Learning Workshop 2015.
  """
  logits = jnp.asarray(logits)
  labels = jnp.asarray(labels)
  if labels.shape != logits.shape:
    raise ValueError(f"pair_bce_loss: labels must have shape {logits.shape}, got {labels.shape}")
  return optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype))


def in_batch_contrastive_loss(
  embeddings: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  margin: float = 1.0,
  distance: str = "euclidean",
  reduction: str = "mean",
  where: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Contrastive loss over all pairs of a batch.

  Positive and negative terms are reduced separately and added, as in
  pytorch-metric-learning's ContrastiveLoss, so that the many in-batch
  negatives do not drown the few positives of a PxK batch.

  Args:
    embeddings: `[B, D]`.
    labels: `[B]` integer identities.
    margin: negative margin (see `contrastive_loss`).
    distance: `"euclidean"`, `"squared_euclidean"` or `"cosine"`.
    reduction: `"mean"` or `"mean_active"`, applied to each half.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    `(loss, active_fraction)`; the fraction counts positives with d > 0 and
    negatives with d < margin among all valid pairs.

  Reference:
    Hadsell, Chopra, LeCun 2006.
  """
  embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
  mining.check_embeddings_and_labels(embeddings, labels, "in_batch_contrastive_loss", where)
  _check_distance(distance)
  d = dist_lib.pairwise_distances(embeddings, metric=distance)
  pos = mining.positive_mask(labels, where)
  neg = mining.negative_mask(labels, where)
  pos_loss, pos_active = reduce_terms(jnp.square(d), pos, reduction)
  neg_loss, neg_active = reduce_terms(jnp.square(jax.nn.relu(margin - d)), neg, reduction)
  num_pos, num_neg = jnp.sum(pos), jnp.sum(neg)
  active_fraction = (pos_active * num_pos + neg_active * num_neg) / jnp.maximum(
    num_pos + num_neg, 1
  )
  return pos_loss + neg_loss, active_fraction


def batch_all_triplet_loss(
  embeddings: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  margin: float = 0.2,
  soft: bool = False,
  distance: str = "euclidean",
  reduction: str = "mean_active",
  where: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Triplet loss over every valid (anchor, positive, negative) of a batch.

  Memory is `O(B^3)`: fine for the usual batches of a few hundred.

  Args:
    embeddings: `[B, D]`.
    labels: `[B]` integer identities.
    margin: triplet margin (ignored when `soft`).
    soft: soft margin `softplus(d_ap - d_an)`; a triplet is active when
      `d_ap > d_an`.
    distance: `"euclidean"`, `"squared_euclidean"` or `"cosine"`.
    reduction: `"mean_active"` (default, "BA+" of Hermans et al.) or `"mean"`.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    `(loss, active_fraction)` over valid triplets.

  Reference:
    Hermans, Beyer, Leibe. In Defense of the Triplet Loss for Person
    Re-Identification. arXiv:1703.07737, 2017.
  """
  embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
  mining.check_embeddings_and_labels(embeddings, labels, "batch_all_triplet_loss", where)
  _check_distance(distance)
  d = dist_lib.pairwise_distances(embeddings, metric=distance)
  gap = d[:, :, None] - d[:, None, :]  # [a, p, n] = d(a, p) - d(a, n)
  valid = mining.triplet_mask(labels, where)
  if soft:
    return reduce_terms(jax.nn.softplus(gap), valid, reduction, active=gap > 0)
  return reduce_terms(jax.nn.relu(gap + margin), valid, reduction)


def batch_hard_triplet_loss(
  embeddings: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  margin: float = 0.2,
  soft: bool = False,
  distance: str = "euclidean",
  reduction: str = "mean",
  where: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Batch-hard triplet loss: each anchor with its hardest positive and negative.

  Args:
    embeddings: `[B, D]`; PxK batches (P identities, K images each) are the
      intended input.
    labels: `[B]` integer identities.
    margin: triplet margin (ignored when `soft`).
    soft: soft margin `softplus(d_ap - d_an)` (the paper's recommended variant).
    distance: `"euclidean"` (the paper's choice), `"squared_euclidean"` or `"cosine"`.
    reduction: `"mean"` (default, over anchors with a positive and a negative)
      or `"mean_active"`.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    `(loss, active_fraction)` over valid anchors.

  Reference:
    Hermans, Beyer, Leibe 2017 (see `jaxsim.mining.batch_hard_triplets`).
  """
  embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
  mining.check_embeddings_and_labels(embeddings, labels, "batch_hard_triplet_loss", where)
  _check_distance(distance)
  d = dist_lib.pairwise_distances(embeddings, metric=distance)
  mined = mining.batch_hard_triplets(d, labels, where)
  rows = jnp.arange(d.shape[0])
  gap = d[rows, mined.positive] - d[rows, mined.negative]
  if soft:
    return reduce_terms(jax.nn.softplus(gap), mined.valid, reduction, active=gap > 0)
  return reduce_terms(jax.nn.relu(gap + margin), mined.valid, reduction)


def semi_hard_triplet_loss(
  embeddings: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  margin: float = 0.2,
  distance: str = "euclidean",
  reduction: str = "mean",
  where: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Semi-hard triplet loss: every positive pair with a semi-hard negative.

  See `jaxsim.mining.semi_hard_negatives` for the choice of negative (and the
  fallback when no negative is farther than the positive).

  Args:
    embeddings: `[B, D]`.
    labels: `[B]` integer identities.
    margin: triplet margin.
    distance: `"euclidean"`, `"squared_euclidean"` (FaceNet's choice) or `"cosine"`.
    reduction: `"mean"` (default, over positive pairs, as TF Addons) or `"mean_active"`.
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    `(loss, active_fraction)` over positive pairs.

  Reference:
    Schroff, Kalenichenko, Philbin. FaceNet. CVPR 2015.
  """
  embeddings, labels = jnp.asarray(embeddings), jnp.asarray(labels)
  mining.check_embeddings_and_labels(embeddings, labels, "semi_hard_triplet_loss", where)
  _check_distance(distance)
  d = dist_lib.pairwise_distances(embeddings, metric=distance)
  mined = mining.semi_hard_negatives(d, labels, where)
  d_an = jnp.take_along_axis(d, mined.negative, axis=1)  # [a, p] -> d(a, n(a, p))
  return reduce_terms(jax.nn.relu(d - d_an + margin), mined.valid, reduction)


def _check_two_tower(a: jax.Array, b: jax.Array, labels: jax.Array | None, name: str) -> None:
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(
      f"{name}: both towers' embeddings must be [batch, dim] with the same shape, "
      f"got {a.shape} and {b.shape}"
    )
  if labels is not None:
    mining.check_labels(labels, a.shape[0], name)


def _match_matrix(batch: int, labels: jax.Array | None) -> jax.Array:
  """`[B, B]` bool: which (a_i, b_j) pairs are matches."""
  if labels is None:
    return jnp.eye(batch, dtype=bool)
  return labels[:, None] == labels[None, :]


def clip_loss(
  a_embeddings: jax.typing.ArrayLike,
  b_embeddings: jax.typing.ArrayLike,
  temperature: jax.typing.ArrayLike = 0.07,
  labels: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """Symmetric InfoNCE (CLIP) loss between two towers.

  Logits are `<a_i, b_j> / temperature`; the loss averages the cross-entropy
  of picking the matching b for each a and the matching a for each b. With
  `labels`, every (i, j) of the same label is a match and the target
  distribution is uniform over the matches, so a batch that holds the same
  identity twice does not treat it as its own negative.

  `optax.losses.ntxent` is not used: it scores one set of embeddings against
  itself (SimCLR), so it would also contrast a tower against itself.

  Args:
    a_embeddings: `[B, D]` tower-A embeddings, normally L2-normalised.
    b_embeddings: `[B, D]` tower-B embeddings; row i matches row i of A.
    temperature: positive scalar (pass `exp(log_temperature)` when learned).
    labels: optional `[B]` integer identities.

  Returns:
    Scalar loss.

  Reference:
    Radford et al. Learning Transferable Visual Models From Natural Language
    Supervision (CLIP). ICML 2021; van den Oord et al. 2018 (InfoNCE).
  """
  a, b = jnp.asarray(a_embeddings), jnp.asarray(b_embeddings)
  labels = None if labels is None else jnp.asarray(labels)
  _check_two_tower(a, b, labels, "clip_loss")
  logits = (a @ b.T) / temperature
  match = _match_matrix(a.shape[0], labels).astype(logits.dtype)
  a_to_b = optax.softmax_cross_entropy(logits, match / jnp.sum(match, axis=1, keepdims=True))
  b_to_a = optax.softmax_cross_entropy(logits.T, match.T / jnp.sum(match.T, axis=1, keepdims=True))
  return 0.5 * (jnp.mean(a_to_b) + jnp.mean(b_to_a))


def siglip_loss(
  a_embeddings: jax.typing.ArrayLike,
  b_embeddings: jax.typing.ArrayLike,
  log_temperature: jax.typing.ArrayLike,
  bias: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike | None = None,
) -> jax.Array:
  """Pairwise sigmoid loss (SigLIP) between two towers.

  Every (a_i, b_j) is an independent binary problem with logit
  `exp(log_temperature) <a_i, b_j> + bias` and target 1 for matches (the
  diagonal, or equal `labels`) and 0 otherwise; the loss is
  `-sum_ij log_sigmoid(z_ij * logit_ij) / B` with `z = +-1`. The paper
  initialises `log_temperature = log(10)` and `bias = -10`.

  Args:
    a_embeddings: `[B, D]` tower-A embeddings, normally L2-normalised.
    b_embeddings: `[B, D]` tower-B embeddings; row i matches row i of A.
    log_temperature: scalar, learnable.
    bias: scalar, learnable.
    labels: optional `[B]` integer identities.

  Returns:
    Scalar loss.

  Reference:
    Zhai, Mustafa, Kolesnikov, Beyer. Sigmoid Loss for Language Image
    Pre-Training. ICCV 2023.
  """
  a, b = jnp.asarray(a_embeddings), jnp.asarray(b_embeddings)
  labels = None if labels is None else jnp.asarray(labels)
  _check_two_tower(a, b, labels, "siglip_loss")
  logits = (a @ b.T) * jnp.exp(log_temperature) + bias
  z = 2.0 * _match_matrix(a.shape[0], labels).astype(logits.dtype) - 1.0
  # log_sigmoid, not log(sigmoid(.)), which underflows to log(0) for large |logit|.
  return -jnp.sum(jax.nn.log_sigmoid(z * logits)) / a.shape[0]


def prototypical_loss(
  embeddings: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  distance: str = "squared_euclidean",
  scale: float = 1.0,
  where: jax.typing.ArrayLike | None = None,
) -> tuple[jax.Array, jax.Array]:
  """Prototypical-network loss over a labelled batch, with leave-one-out prototypes.

  Every row is a query: it is classified among the classes of the batch by
  softmax(-scale * d(row, prototype)), where a class's prototype is the mean of its
  rows, and its own class's prototype leaves the row itself out (so a PxK batch is
  P-way, (K-1)-shot episodes for every row at once; Snell et al. split each class
  into supports and queries instead). Rows whose class has no other row are not
  queries.

  Args:
    embeddings: `[B, D]`.
    labels: `[B]` integer classes.
    distance: "squared_euclidean" (Snell et al.), "euclidean" or "cosine".
    scale: multiplies the negative distances (a temperature; 1 for Snell et al.'s
      squared Euclidean on unnormalised embeddings, ~10-30 for cosine).
    where: optional `[B]` bool, which rows are real examples.

  Returns:
    `(loss, accuracy)`: the mean cross-entropy over queries, and the fraction of
    queries whose nearest prototype is their own class's.

  Reference:
    Snell, Swersky, Zemel. Prototypical Networks for Few-shot Learning. NeurIPS 2017.
  """
  e, labels = jnp.asarray(embeddings), jnp.asarray(labels)
  mining.check_embeddings_and_labels(e, labels, "prototypical_loss", where)
  _check_distance(distance)
  batch = e.shape[0]
  valid = jnp.ones(batch, bool) if where is None else jnp.asarray(where, bool)
  same = (labels[:, None] == labels[None, :]) & valid[None, :] & valid[:, None]
  counts = jnp.sum(same, axis=1)  # rows of each row's class (itself included)
  sums = same.astype(e.dtype) @ e
  protos = sums / jnp.maximum(counts, 1)[:, None]  # row j: its class's prototype
  own = (sums - e) / jnp.maximum(counts - 1, 1)[:, None]  # leave-one-out prototype
  # Column j stands for its class when it is the class's first valid row.
  earlier = jnp.tril(same, k=-1)
  first = valid & ~jnp.any(earlier, axis=1)

  def dist(x, y):
    if distance == "cosine":
      return 1.0 - jnp.sum(dist_lib.l2_normalize(x) * dist_lib.l2_normalize(y), axis=-1)
    d2 = jnp.sum(jnp.square(x - y), axis=-1)
    return d2 if distance == "squared_euclidean" else dist_lib.safe_sqrt(d2)

  d = dist(e[:, None, :], protos[None, :, :])  # [B, B]
  d_own = dist(e, own)  # [B]
  d = jnp.where(same, d_own[:, None], d)
  logits = jnp.where(first[None, :], -scale * d, -jnp.inf)
  query = valid & (counts >= 2)
  target = jnp.argmax(same & first[None, :], axis=1)
  ce = optax.softmax_cross_entropy_with_integer_labels(
    jnp.where(query[:, None], logits, 0.0), jnp.where(query, target, 0)
  )
  num = jnp.maximum(jnp.sum(query), 1)
  loss = jnp.sum(jnp.where(query, ce, 0.0)) / num
  correct = (jnp.argmax(logits, axis=1) == target) & query
  return loss, jnp.sum(correct) / num


def normalized_softmax_loss(
  embeddings: jax.typing.ArrayLike,
  proxies: jax.typing.ArrayLike,
  labels: jax.typing.ArrayLike,
  scale: float = 16.0,
  margin: float = 0.1,
  num_sampled: int = 0,
) -> tuple[jax.Array, jax.Array]:
  """Cosine softmax over learnable class proxies, with an additive margin (CosFace).

  logit_c = scale * (cos(e, p_c) - margin * [c = label]); the loss is the softmax
  cross-entropy. With margin 0 this is NormFace's normalised softmax. Every training
  class has a proxy, so each row is contrasted with all classes, not only those in the
  batch.

  Args:
    embeddings: `[B, D]` (normalised here).
    proxies: `[C, D]` (normalised here).
    labels: `[B]` integer classes in [0, C).
    scale: the inverse temperature s.
    margin: the additive cosine margin m.
    num_sampled: 0 (default) contrasts every row with all C proxies. 0 < K < C
      contrasts it with K proxies only: every class of the batch and K - (classes in
      the batch) others drawn uniformly without replacement (Partial FC, An et al.
      2022), which cuts the cost of the proxy layer, forward and backward, to K / C.
      The draw's key is hashed from the batch's labels, so a step's sample is a
      function of its batch (deterministic and resumable). K must be at least the
      batch size.

  Returns:
    `(loss, accuracy)`: the mean cross-entropy and the fraction of rows whose nearest
    proxy (without margin) is their own (among the sampled ones, with `num_sampled`).

  References:
    Wang et al. NormFace, ACM MM 2017; Wang et al. CosFace, CVPR 2018; An et al.
    Killing two birds with one stone: efficient and robust training of face
    recognition CNNs by Partial FC, CVPR 2022.
  """
  e, p, labels = jnp.asarray(embeddings), jnp.asarray(proxies), jnp.asarray(labels)
  mining.check_embeddings_and_labels(e, labels, "normalized_softmax_loss")
  if p.ndim != 2 or p.shape[1] != e.shape[1]:
    raise ValueError(
      f"normalized_softmax_loss: proxies must be [classes, {e.shape[1]}], got {p.shape}"
    )
  if 0 < num_sampled < p.shape[0]:
    if num_sampled < labels.shape[0]:
      raise ValueError(
        f"normalized_softmax_loss: num_sampled={num_sampled} is below the batch size "
        f"{labels.shape[0]}; every class of the batch must be among the sampled proxies"
      )
    classes = sampled_classes(labels, p.shape[0], num_sampled)
    p = p[classes]
    labels_in = (classes[None, :] == labels[:, None]).astype(e.dtype)
  else:
    classes, labels_in = jnp.arange(p.shape[0]), jax.nn.one_hot(labels, p.shape[0], dtype=e.dtype)
  cos = dist_lib.l2_normalize(e) @ dist_lib.l2_normalize(p).T
  loss = optax.softmax_cross_entropy(scale * (cos - margin * labels_in), labels_in)
  return jnp.mean(loss), jnp.mean(classes[jnp.argmax(cos, axis=1)] == labels)


def sampled_classes(labels: jax.Array, num_classes: int, num: int) -> jax.Array:
  """`num` distinct classes of [0, num_classes): every class in `labels` (at most `num`
  of them) and uniformly drawn others, with a key hashed from `labels` (see
  `normalized_softmax_loss`). Returns `[num]` int32 class ids, in no fixed order."""
  labels = jnp.asarray(labels, jnp.int32)
  weights = jnp.arange(1, labels.shape[0] + 1, dtype=jnp.uint32) * jnp.uint32(2654435761)
  digest = jnp.sum(labels.astype(jnp.uint32) * weights, dtype=jnp.uint32)
  key = jax.random.fold_in(jax.random.key(0x5A3F), digest)
  priority = jax.random.uniform(key, (num_classes,)).at[labels].set(2.0)
  return jax.lax.top_k(priority, num)[1].astype(jnp.int32)
