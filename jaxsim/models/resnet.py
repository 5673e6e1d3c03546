"""ResNet-18/34/50 encoders with an embedding head (Flax Linen).

The layout follows He et al. 2016 (torchvision's ResNet v1.5: the stride of a
bottleneck block sits on its 3x3 convolution). `small_inputs=True` swaps the
7x7/2 stem and its max-pool for one 3x3/1 convolution, the usual choice for
32-128 pixel images where the ImageNet stem would discard most of the image.

Reference: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.models import conv as conv_lib

STAGE_SIZES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Scales rows of `x` [..., D] to unit Euclidean norm."""
  # rsqrt of a floored squared norm: a zero row stays finite (and zero) instead of NaN.
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


class BasicBlock(nn.Module):
  """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

  filters: int
  strides: int = 1
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(
      nn.Conv, use_bias=False, dtype=self.dtype, conv_general_dilated=conv_lib.CONVS[self.conv_impl]
    )
    norm = functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, dtype=self.dtype
    )
    y = conv(self.filters, (3, 3), (self.strides, self.strides), padding=1)(x)
    y = nn.relu(norm()(y))
    y = conv(self.filters, (3, 3), padding=1)(y)
    # Zero-initialised last scale: each block starts as the identity (Goyal et al. 2017).
    y = norm(scale_init=nn.initializers.zeros)(y)
    if x.shape[-1] != self.filters or self.strides != 1:
      x = conv(self.filters, (1, 1), (self.strides, self.strides), name="proj_conv")(x)
      x = norm(name="proj_bn")(x)
    return nn.relu(x + y)


class BottleneckBlock(nn.Module):
  """1x1 reduce, 3x3 (strided), 1x1 expand by 4, with a projection shortcut."""

  filters: int
  strides: int = 1
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    conv = functools.partial(
      nn.Conv, use_bias=False, dtype=self.dtype, conv_general_dilated=conv_lib.CONVS[self.conv_impl]
    )
    norm = functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, dtype=self.dtype
    )
    y = nn.relu(norm()(conv(self.filters, (1, 1))(x)))
    y = conv(self.filters, (3, 3), (self.strides, self.strides), padding=1)(y)
    y = nn.relu(norm()(y))
    y = norm(scale_init=nn.initializers.zeros)(conv(self.filters * 4, (1, 1))(y))
    if x.shape[-1] != self.filters * 4 or self.strides != 1:
      x = conv(self.filters * 4, (1, 1), (self.strides, self.strides), name="proj_conv")(x)
      x = norm(name="proj_bn")(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet trunk: images [B, H, W, C] -> globally pooled features [B, F].

  Attributes:
    depth: 18, 34 or 50.
    width: filters of the first stage (64 in the paper; smaller for tests).
    small_inputs: 3x3/1 stem without max-pool instead of 7x7/2 + 3x3/2 max-pool.
    dtype: computation dtype (parameters stay float32).
    conv_impl: "auto" (default), "xla" or "im2col"; see `jaxsim.models.conv`.
  """

  depth: int = 18
  width: int = 64
  small_inputs: bool = False
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if self.depth not in STAGE_SIZES:
      raise ValueError(f"ResNet depth must be one of {sorted(STAGE_SIZES)}, got {self.depth}")
    if x.ndim != 4:
      raise ValueError(f"ResNet expects NHWC images [B, H, W, C], got shape {x.shape}")
    if self.conv_impl not in conv_lib.CONVS:
      raise ValueError(
        f"ResNet conv_impl must be one of {sorted(conv_lib.CONVS)}, got {self.conv_impl!r}"
      )
    block = BottleneckBlock if self.depth == 50 else BasicBlock
    x = x.astype(self.dtype)
    conv = functools.partial(
      nn.Conv, use_bias=False, dtype=self.dtype, conv_general_dilated=conv_lib.CONVS[self.conv_impl]
    )
    if self.small_inputs:
      x = conv(self.width, (3, 3), padding=1)(x)
    else:
      x = conv(self.width, (7, 7), (2, 2), padding=3)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    x = nn.relu(x)
    if not self.small_inputs:
      x = conv_lib.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
    for i, num_blocks in enumerate(STAGE_SIZES[self.depth]):
      for j in range(num_blocks):
        strides = 2 if i > 0 and j == 0 else 1
        x = block(self.width * 2**i, strides, dtype=self.dtype, conv_impl=self.conv_impl)(x, train)
    return jnp.mean(x, axis=(1, 2)).astype(jnp.float32)


class EmbeddingHead(nn.Module):
  """Dense projection, optional batch norm, optional L2 normalisation.

  Attributes:
    dim: embedding dimension.
    batch_norm: apply BatchNorm after the projection (as in seed project 5).
    normalize: L2-normalise the output rows.
  """

  dim: int = 128
  batch_norm: bool = False
  normalize: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nn.Dense(self.dim, use_bias=not self.batch_norm)(x)
    if self.batch_norm:
      x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return l2_normalize(x) if self.normalize else x


class ResNetEncoder(nn.Module):
  """ResNet trunk followed by an `EmbeddingHead`: [B, H, W, C] -> [B, dim]."""

  depth: int = 18
  width: int = 64
  small_inputs: bool = False
  dim: int = 128
  head_batch_norm: bool = False
  normalize: bool = True
  dtype: Any = jnp.float32
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    features = ResNet(
      self.depth, self.width, self.small_inputs, self.dtype, self.conv_impl, name="trunk"
    )(x, train)
    return EmbeddingHead(self.dim, self.head_batch_norm, self.normalize, name="head")(
      features, train
    )
