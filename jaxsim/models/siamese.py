"""Siamese (shared encoder) and two-tower (one encoder per modality) models.

Both return a dict of outputs: `embeddings_a` (and `embeddings_b` when a second
input is given), plus the learnable scalars `log_temperature` and `bias` when
configured, for the InfoNCE (CLIP) and sigmoid (SigLIP) losses. The
temperature is parametrised by its log so that it stays positive; the
logits of those losses are `exp(log_temperature) * cosine + bias`.

Inputs are arrays, or tuples of arrays for encoders with several inputs (the
text encoder takes `(text_ids, text_mask)`).

References: Bromley et al., "Signature Verification using a Siamese Time Delay
Neural Network", NIPS 1993; Radford et al., "Learning Transferable Visual
Models From Natural Language Supervision", ICML 2021 (CLIP); Zhai et al.,
"Sigmoid Loss for Language Image Pre-Training", ICCV 2023 (SigLIP: init
log_temperature = log 10, bias = -10).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.models.koch import KochEncoder, L1PairHead


def _call(encoder: nn.Module, x: Any, train: bool) -> jax.Array:
  return encoder(*x, train=train) if isinstance(x, tuple | list) else encoder(x, train=train)


def _scalars(module: nn.Module, log_temperature_init, bias_init) -> dict[str, jax.Array]:
  out = {}
  if log_temperature_init is not None:
    out["log_temperature"] = module.param(
      "log_temperature", nn.initializers.constant(log_temperature_init), ()
    )
  if bias_init is not None:
    out["bias"] = module.param("bias", nn.initializers.constant(bias_init), ())
  return out


class SiameseModel(nn.Module):
  """One encoder with shared weights applied to one or two inputs.

  With two array inputs of the same shape they are encoded in one call (the
  batches concatenated), so batch-norm statistics cover both sides of the pair.

  Attributes:
    encoder: any module mapping an input batch to [B, D] embeddings.
    log_temperature_init: initial log temperature; None for no such parameter.
    bias_init: initial logit bias; None for no such parameter.
    num_proxies: > 0 adds a learnable proxy (class centre) per training class,
      `proxies` [num_proxies, D] in the outputs, for proxy losses such as
      `losses.normalized_softmax_loss`; they are not part of the embedding.
    proxy_init_scale: standard deviation of the proxies' normal init. Losses normalise
      the proxies, so the scale sets how fast Adam's steps (about learning_rate per
      coordinate) turn them: at 0.01 they snap to the class means within a few steps,
      at 1.0 they move slowly.
  """

  encoder: nn.Module
  log_temperature_init: float | None = None
  bias_init: float | None = None
  num_proxies: int = 0
  proxy_init_scale: float = 0.01

  @nn.compact
  def __call__(self, a: Any, b: Any = None, *, train: bool = False) -> dict[str, jax.Array]:
    out = _scalars(self, self.log_temperature_init, self.bias_init)
    if b is None:
      out["embeddings_a"] = _call(self.encoder, a, train)
      if self.num_proxies:
        dim = out["embeddings_a"].shape[-1]
        out["proxies"] = self.param(
          "proxies", nn.initializers.normal(self.proxy_init_scale), (self.num_proxies, dim)
        )
    elif not isinstance(a, tuple | list) and a.shape == b.shape:
      both = _call(self.encoder, jnp.concatenate([a, b], axis=0), train)
      out["embeddings_a"], out["embeddings_b"] = jnp.split(both, 2, axis=0)
    else:
      out["embeddings_a"] = _call(self.encoder, a, train)
      out["embeddings_b"] = _call(self.encoder, b, train)
    return out


class TwoTowerModel(nn.Module):
  """Separate encoders for modality A and modality B (no shared weights).

  Attributes:
    encoder_a: encoder of modality A (for example faces).
    encoder_b: encoder of modality B (for example fingerprints, or text).
    log_temperature_init: initial log temperature; None for no such parameter.
    bias_init: initial logit bias; None for no such parameter.
  """

  encoder_a: nn.Module
  encoder_b: nn.Module
  log_temperature_init: float | None = None
  bias_init: float | None = None

  @nn.compact
  def __call__(self, a: Any = None, b: Any = None, *, train: bool = False) -> dict[str, jax.Array]:
    if a is None and b is None:
      raise ValueError("TwoTowerModel needs at least one of the inputs a and b")
    out = _scalars(self, self.log_temperature_init, self.bias_init)
    # Both towers are always traced at init (`a` and `b` given), and either one
    # can then embed alone for evaluation.
    if a is not None:
      out["embeddings_a"] = _call(self.encoder_a, a, train)
    if b is not None:
      out["embeddings_b"] = _call(self.encoder_b, b, train)
    return out


class KochSiameseModel(nn.Module):
  """Koch et al. 2015: shared `KochEncoder` and the L1 pair head.

  Returns `embeddings_a`, `embeddings_b` (the 4096 sigmoid features) and, for
  pairs, `logits` [B] (same identity when positive). The head is a method of its own:
  `model.apply(variables, fa, fb, method=model.pair_logits)` scores pairs from features
  embedded once, without running the encoder again.
  """

  encoder: nn.Module = None

  def setup(self):
    self.siamese = SiameseModel(self.encoder if self.encoder is not None else KochEncoder())
    self.pair_head = L1PairHead()

  def __call__(self, a: jax.Array, b: jax.Array | None = None, *, train: bool = False):
    out = self.siamese(a, b, train=train)
    if b is not None:
      out["logits"] = self.pair_head(out["embeddings_a"], out["embeddings_b"])
    return out

  def pair_logits(self, features_a: jax.Array, features_b: jax.Array) -> jax.Array:
    """Logits [B] of feature pairs ([B, D] each, as `embeddings_a` / `embeddings_b`)."""
    return self.pair_head(features_a, features_b)
