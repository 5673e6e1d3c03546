"""The Siamese CNN of Koch, Zemel and Salakhutdinov (2015), as published.

Encoder: Conv 64 10x10 - max-pool 2x2 - Conv 128 7x7 - max-pool 2x2 -
Conv 128 4x4 - max-pool 2x2 - Conv 256 4x4 - flatten - Dense 4096 sigmoid,
ReLU after every convolution and 'valid' padding. The pair head weighs the
component-wise L1 distance |h_a - h_b| with one Dense unit and returns the
logit; the paper's sigmoid belongs to the loss (`pair_bce_loss` works on logits).
On 105x105 inputs the feature map before the dense layer is 6x6x256 as in the
paper; seed project 2 fed 100x100 images (5x5x256). Seed project 2's 64x64
pooling window was a bug; the pools here are the paper's 2x2.

Reference: Koch, Zemel, Salakhutdinov, "Siamese Neural Networks for One-shot
Image Recognition", ICML Deep Learning Workshop 2015.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.models import conv as conv_lib


class KochEncoder(nn.Module):
  """Koch et al. convolutional tower: [B, H, W, C] -> [B, 4096] sigmoid features.

  Attributes:
    features: channels of the four convolutions (the paper's 64, 128, 128, 256).
    dense: width of the sigmoid feature layer (4096 in the paper).
  """

  features: tuple[int, int, int, int] = (64, 128, 128, 256)
  dense: int = 4096

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # no batch norm or dropout in the published network
    if x.ndim != 4:
      raise ValueError(f"KochEncoder expects NHWC images [B, H, W, C], got shape {x.shape}")
    if min(x.shape[1:3]) < 65:
      # 'valid' convolutions and three 2x2 pools leave nothing of smaller images.
      raise ValueError(f"KochEncoder needs images of at least 65x65 pixels, got {x.shape[1:3]}")
    kernels = ((10, 10), (7, 7), (4, 4), (4, 4))
    for i, (filters, kernel) in enumerate(zip(self.features, kernels, strict=True)):
      x = nn.relu(nn.Conv(filters, kernel, padding="VALID")(x))
      if i < 3:
        x = conv_lib.max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1)
    return nn.sigmoid(nn.Dense(self.dense)(x))


class L1PairHead(nn.Module):
  """Koch et al. pair head: logit = w . |h_a - h_b| + b, [B, D] x [B, D] -> [B]."""

  @nn.compact
  def __call__(self, h_a: jax.Array, h_b: jax.Array) -> jax.Array:
    if h_a.shape != h_b.shape:
      raise ValueError(f"pair head needs equal shapes, got {h_a.shape} and {h_b.shape}")
    return nn.Dense(1)(jnp.abs(h_a - h_b))[..., 0]
