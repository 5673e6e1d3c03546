"""Encoders and pair models (Flax Linen; pure `init`/`apply`).

`encoder_from_config` and `model_from_config` build them from the `model`
section of a config; see their docstrings for the fields they read.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsim.models.koch import KochEncoder, L1PairHead
from jaxsim.models.resnet import EmbeddingHead, ResNet, ResNetEncoder, l2_normalize
from jaxsim.models.siamese import KochSiameseModel, SiameseModel, TwoTowerModel
from jaxsim.models.small_cnn import Conv4, DigitCNN, FaceAuthCNN
from jaxsim.models.text import CharTextEncoder

__all__ = [
  "CharTextEncoder",
  "Conv4",
  "DigitCNN",
  "EmbeddingHead",
  "FaceAuthCNN",
  "KochEncoder",
  "KochSiameseModel",
  "L1PairHead",
  "ResNet",
  "ResNetEncoder",
  "SiameseModel",
  "TwoTowerModel",
  "encoder_from_config",
  "l2_normalize",
  "model_from_config",
]

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def encoder_from_config(cfg: Any) -> nn.Module:
  """Builds one encoder from a mapping (ConfigDict or dict).

  Fields: `name` in {resnet18, resnet34, resnet50, koch, face_auth_cnn, digit_cnn,
  conv4, char_text}; `dim` (embedding size); ResNet: `width` (64), `small_inputs`,
  `head_batch_norm`, `normalize`, `dtype` ("float32" or "bfloat16"); text:
  `vocab_size`, `max_ngram`; CNNs: `normalize`.
  """
  # Lists (a config read back from JSON) become tuples: Flax modules must be hashable.
  cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(cfg).items()}
  name = cfg.pop("name")
  if name.startswith("resnet"):
    depth = int(name[len("resnet") :])
    dtype = cfg.pop("dtype", "float32")
    if dtype not in _DTYPES:
      raise ValueError(f"model dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return ResNetEncoder(depth=depth, dtype=_DTYPES[dtype], **cfg)
  builders = {
    "koch": KochEncoder,
    "face_auth_cnn": FaceAuthCNN,
    "conv4": Conv4,
    "digit_cnn": DigitCNN,
    "char_text": CharTextEncoder,
  }
  if name not in builders:
    raise ValueError(
      f"unknown encoder {name!r}; expected resnet18/34/50 or one of {sorted(builders)}"
    )
  return builders[name](**cfg)


def model_from_config(cfg: Any) -> nn.Module:
  """Builds a pair model from the `model` section of a config.

  Fields: `kind` in {siamese, two_tower, koch}; `encoder` (siamese), or
  `encoder_a` and `encoder_b` (two_tower): mappings for `encoder_from_config`;
  optional `log_temperature_init` and `bias_init` (None: no such parameter);
  siamese: optional `num_proxies` (one learnable proxy per training class; the task
  sets it from its data) and `proxy_init_scale` (their init's standard deviation, 0.01).
  """
  kind = cfg["kind"]
  scalars = {
    "log_temperature_init": cfg.get("log_temperature_init"),
    "bias_init": cfg.get("bias_init"),
  }
  if kind == "siamese":
    return SiameseModel(
      encoder_from_config(cfg["encoder"]),
      num_proxies=int(cfg.get("num_proxies", 0)),
      proxy_init_scale=float(cfg.get("proxy_init_scale", 0.01)),
      **scalars,
    )
  if kind == "two_tower":
    return TwoTowerModel(
      encoder_from_config(cfg["encoder_a"]), encoder_from_config(cfg["encoder_b"]), **scalars
    )
  if kind == "koch":
    encoder = encoder_from_config(cfg["encoder"]) if cfg.get("encoder") else KochEncoder()
    return KochSiameseModel(encoder)
  raise ValueError(f"unknown model kind {kind!r}; expected siamese, two_tower or koch")
