"""Training objectives: a loss from `jaxsim.losses` bound to a batch layout.

`objective_from_config(cfg)` returns `loss_fn(outputs, batch) -> (loss, aux)`
for `jaxsim.train.fit`, where `outputs` is the model's dict (`embeddings_a`,
`embeddings_b`, `logits`, `log_temperature`, `bias`) and `batch` follows the
batch contracts of `jaxsim.data`. The `loss` section of a config reads:

- `name`: one of `OBJECTIVES` (below);
- `margin`, `distance` ("euclidean" | "squared_euclidean" | "cosine"),
  `reduction` ("mean" | "mean_active"), `soft` (triplets), `temperature`
  (fixed CLIP temperature when the model has no `log_temperature`).

| name | batch | loss |
| --- | --- | --- |
| `pair_contrastive` | pairs `image_a, image_b, label` | `contrastive_loss` on the pair distance |
| `pair_bce` | pairs | `pair_bce_loss` on the model's `logits` (Koch) |
| `in_batch_contrastive` | PxK `image, identity` or two-tower | all pairs of the batch |
| `batch_all`, `batch_hard`, `semi_hard` | PxK or two-tower | in-batch triplet losses |
| `clip`, `siglip` | two-tower `image_a, image_b, identity` | two-tower losses |
| `sum` | what its terms need | sum of `weight` x each of `terms` (a mapping name -> loss section) |

A `sum` reads `terms`, e.g. CosFace plus a batch-hard cosine triplet (the real-face
recipe of `face_verify:folders`):
`{"name": "sum", "terms": {"cosface": {"name": "normalized_softmax", "scale": 16,
"margin": 0.2}, "triplet": {"name": "batch_hard", "margin": 0.2, "distance": "cosine"}}}`;
each term may carry a `weight` (default 1). Its aux metrics are the terms' losses
(`<term>_loss`) and their aux, prefixed `<term>_`.

For two-tower batches the in-batch losses run on the concatenation of both
towers' embeddings with the identities repeated, so every (face,
fingerprint) pair of a subject is a positive and cross-subject pairs, within
and across modalities, are negatives. For purely cross-modal contrast use
`clip` or `siglip`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxsim import built, distances, losses

LossFn = Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array]], tuple[jax.Array, dict]]

OBJECTIVES = (
  "pair_contrastive",
  "pair_bce",
  "in_batch_contrastive",
  "batch_all",
  "batch_hard",
  "semi_hard",
  "prototypical",
  "normalized_softmax",
  "clip",
  "siglip",
  "sum",
)


def _pair_distance(a: jax.Array, b: jax.Array, distance: str) -> jax.Array:
  if distance == "euclidean":
    return distances.euclidean_distance(a, b)
  if distance == "squared_euclidean":
    return distances.squared_euclidean_distance(a, b)
  if distance == "cosine":
    return distances.cosine_distance(a, b)
  raise ValueError(f"loss.distance must be euclidean, squared_euclidean or cosine: {distance!r}")


def _embeddings_and_labels(outputs, batch) -> tuple[jax.Array, jax.Array]:
  """PxK batches: one tower. Two-tower batches: both towers stacked, labels repeated."""
  labels = batch["identity"].astype(jnp.int32)
  if "embeddings_b" in outputs:
    return (
      jnp.concatenate([outputs["embeddings_a"], outputs["embeddings_b"]]),
      jnp.concatenate([labels, labels]),
    )
  return outputs["embeddings_a"], labels


def uses_proxies(cfg: Any) -> bool:
  """Whether the loss section (or one of a `sum`'s terms) needs per-class proxies."""
  if cfg.get("name") == "sum":
    return any(uses_proxies(t) for t in dict(cfg.get("terms") or {}).values())
  return cfg.get("name") == "normalized_softmax"


def _sum_objective(terms: Mapping[str, Any]) -> LossFn:
  if not terms:
    raise ValueError("loss.name='sum' needs loss.terms: a mapping of term name -> loss section")
  fns = {}
  for key, term in terms.items():
    term = dict(term)
    if term.get("name") == "sum":
      raise ValueError(f"loss.terms.{key}: a 'sum' term cannot hold another 'sum'")
    fns[key] = (float(term.pop("weight", 1.0)), objective_from_config(term))

  def loss_fn(outputs, batch):
    total, aux = 0.0, {}
    for key, (weight, fn) in fns.items():
      loss, term_aux = fn(outputs, batch)
      total = total + weight * loss
      aux[f"{key}_loss"] = loss
      aux.update({f"{key}_{k}": v for k, v in term_aux.items()})
    return total, aux

  return loss_fn


# Objectives and loss families built so far, by canonical config.
_BUILT = built.BuiltOnce(64)
# Loss settings that a train step takes as arguments instead of constants (`family` below).
TRACED = ("margin",)


def _plain(value: Any) -> Any:
  """A config value as JSON-able data: mappings (ConfigDicts too) and sequences unfolded."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, list | tuple):
    return [_plain(v) for v in value]
  return value


def _memo(key: Any, build: Callable[[], Any]) -> Any:
  return _BUILT.get(json.dumps(_plain(key), sort_keys=True, default=repr), build)


def objective_from_config(cfg: Any) -> LossFn:
  """Builds `loss_fn(outputs, batch) -> (loss, aux)` from the `loss` config section.

  Equal sections give the same function object (loss functions are pure), so the train
  steps of models that differ only in seed or data (`jaxsim.train.shared` keys on the
  loss function) share one jitted step: no second trace, lowering or cache lookup
  (about 1.1 s per model for a ResNet-18 step).

  A section with a numeric `margin` (any name but "sum") also gives the function two
  attributes: `hparams` ({"margin": value}) and `family`, a function
  `(outputs, batch, hparams) -> (loss, aux)` shared by every section that differs only
  in the margin. `jaxsim.train` passes the margin to its step as an argument, so a
  margin grid compiles one step.
  """
  return _memo(("objective", cfg), lambda: _parametrised(_plain(cfg)))


def _parametrised(cfg: dict) -> LossFn:
  loss_fn = _build_objective(cfg)  # checks the section now, not when a step is traced
  hparams = {k: cfg[k] for k in TRACED if k in cfg}
  numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in hparams.values())
  if cfg.get("name") == "sum" or not hparams or not numeric:
    return loss_fn
  base = {k: v for k, v in cfg.items() if k not in hparams}

  def build_family():
    def family(outputs, batch, values):
      return _build_objective({**base, **values})(outputs, batch)

    return family

  family = _memo(("family", base), build_family)

  def with_constants(outputs, batch):
    return family(outputs, batch, hparams)

  with_constants.family, with_constants.hparams = family, {k: float(v) for k, v in hparams.items()}
  return with_constants


def _build_objective(cfg: Any) -> LossFn:
  cfg = dict(cfg)
  name = cfg.get("name")
  if name not in OBJECTIVES:
    raise ValueError(f"loss.name must be one of {OBJECTIVES}, got {name!r}")
  if name == "sum":
    return _sum_objective(dict(cfg.get("terms") or {}))
  margin = cfg.get("margin", 1.0)
  distance = cfg.get("distance", "euclidean")
  reduction = cfg.get("reduction", None)
  soft = cfg.get("soft", False)

  if name == "pair_contrastive":

    def loss_fn(outputs, batch):
      d = _pair_distance(outputs["embeddings_a"], outputs["embeddings_b"], distance)
      per_pair = losses.contrastive_loss(d, batch["label"], margin=margin)
      same = batch["label"] == 1
      active = jnp.where(same, d > 0, d < margin)
      return jnp.mean(per_pair), {"active_fraction": jnp.mean(active)}

    return loss_fn

  if name == "pair_bce":

    def loss_fn(outputs, batch):
      logits = outputs["logits"]
      per_pair = losses.pair_bce_loss(logits, batch["label"])
      accuracy = jnp.mean((logits > 0) == (batch["label"] == 1))
      return jnp.mean(per_pair), {"pair_accuracy": accuracy}

    return loss_fn

  if name == "normalized_softmax":
    scale, num_sampled = cfg.get("scale", 16.0), int(cfg.get("num_sampled", 0))

    def loss_fn(outputs, batch):
      if "proxies" not in outputs:
        raise ValueError("loss.name='normalized_softmax' needs a model with num_proxies > 0")
      loss, accuracy = losses.normalized_softmax_loss(
        outputs["embeddings_a"],
        outputs["proxies"],
        batch["identity"].astype(jnp.int32),
        scale=scale,
        margin=margin,
        num_sampled=num_sampled,
      )
      return loss, {"proxy_accuracy": accuracy}

    return loss_fn

  if name in ("clip", "siglip"):
    temperature = cfg.get("temperature", 0.07)

    def loss_fn(outputs, batch):
      a, b = outputs["embeddings_a"], outputs["embeddings_b"]
      labels = batch["identity"].astype(jnp.int32)
      if name == "clip":
        t = jnp.exp(-outputs["log_temperature"]) if "log_temperature" in outputs else temperature
        loss = losses.clip_loss(a, b, temperature=t, labels=labels)
      else:
        loss = losses.siglip_loss(a, b, outputs["log_temperature"], outputs["bias"], labels)
      return loss, {}

    return loss_fn

  in_batch = {
    "in_batch_contrastive": lambda e, y: losses.in_batch_contrastive_loss(
      e, y, margin=margin, distance=distance, reduction=reduction or "mean"
    ),
    "batch_all": lambda e, y: losses.batch_all_triplet_loss(
      e, y, margin=margin, soft=soft, distance=distance, reduction=reduction or "mean_active"
    ),
    "batch_hard": lambda e, y: losses.batch_hard_triplet_loss(
      e, y, margin=margin, soft=soft, distance=distance, reduction=reduction or "mean"
    ),
    "semi_hard": lambda e, y: losses.semi_hard_triplet_loss(
      e, y, margin=margin, distance=distance, reduction=reduction or "mean"
    ),
    # (loss, accuracy of the leave-one-out prototypes), logged as active_fraction's place
    "prototypical": lambda e, y: losses.prototypical_loss(
      e, y, distance=distance, scale=cfg.get("scale", 1.0)
    ),
  }[name]

  aux_name = "episode_accuracy" if name == "prototypical" else "active_fraction"

  def loss_fn(outputs, batch):
    embeddings, labels = _embeddings_and_labels(outputs, batch)
    loss, aux = in_batch(embeddings, labels)
    return loss, {aux_name: aux}

  return loss_fn


def rolled_pair_contrastive(margin: float, all_positive: bool = False) -> LossFn:
  """Seed project 4's image-text contrastive loss on cosine distances, with or without negatives.

  Positives: (image i, text i). Negatives (unless `all_positive`): (image i, text of
  row i - 1), labelled by whether the two rows show the same digit.
  """

  def loss_fn(outputs, batch):
    a, b = outputs["embeddings_a"], outputs["embeddings_b"]
    d_pos = distances.cosine_distance(a, b)
    if all_positive:
      loss = jnp.mean(losses.contrastive_loss(d_pos, jnp.ones_like(batch["identity"]), margin))
      return loss, {"mean_cosine_pos": jnp.mean(1.0 - d_pos)}
    y = batch["identity"]
    d_neg = distances.cosine_distance(a, jnp.roll(b, 1, axis=0))
    same = (y == jnp.roll(y, 1)).astype(jnp.int32)
    per_pair = jnp.concatenate(
      [
        losses.contrastive_loss(d_pos, jnp.ones_like(y), margin),
        losses.contrastive_loss(d_neg, same, margin),
      ]
    )
    return jnp.mean(per_pair), {"mean_cosine_pos": jnp.mean(1.0 - d_pos)}

  return loss_fn
