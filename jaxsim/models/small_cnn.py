"""The small CNNs of seed projects 3 (face authentication) and 4 (image-text).

Seed project 3 used a three-layer CNN (32, 64, 64 filters), global pooling and
a 48-unit Dense embedding compared by Euclidean distance. Seed project 4's image
branch was two convolutions with batch norm and ReLU, max-pooling and fully
connected layers (its README gives no widths; the 32/64 filters and 128 hidden
units here are our choice, stated once).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.models import conv as conv_lib
from jaxsim.models.resnet import l2_normalize


class FaceAuthCNN(nn.Module):
  """Seed project 3 encoder: 3x3 convs 32-64-64, global average pool, Dense 48.

  Attributes:
    features: convolution widths.
    dim: embedding dimension (48 in the seed).
    normalize: L2-normalise the output (the seed did not; its Euclidean
      contrastive margin of 1.0 was on raw embeddings).
  """

  features: tuple[int, ...] = (32, 64, 64)
  dim: int = 48
  normalize: bool = False

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    if x.ndim != 4:
      raise ValueError(f"FaceAuthCNN expects NHWC images [B, H, W, C], got shape {x.shape}")
    for i, filters in enumerate(self.features):
      x = nn.relu(nn.Conv(filters, (3, 3), padding="SAME")(x))
      if i < len(self.features) - 1:
        x = conv_lib.max_pool_2x2(x)
    x = nn.Dense(self.dim)(jnp.mean(x, axis=(1, 2)))
    return l2_normalize(x) if self.normalize else x


class DigitCNN(nn.Module):
  """Seed project 4 image branch: 2 x (conv 3x3, BN, ReLU, max-pool 2), Dense, Dense.

  Attributes:
    features: convolution widths.
    hidden: width of the hidden Dense layer.
    dim: embedding dimension.
    normalize: L2-normalise the output (cosine similarity downstream).
  """

  features: tuple[int, ...] = (32, 64)
  hidden: int = 128
  dim: int = 64
  normalize: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"DigitCNN expects NHWC images [B, H, W, C], got shape {x.shape}")
    for filters in self.features:
      x = nn.Conv(filters, (3, 3), padding="SAME", use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      x = conv_lib.max_pool_2x2(x)
    x = nn.relu(nn.Dense(self.hidden)(x.reshape(x.shape[0], -1)))
    x = nn.Dense(self.dim)(x)
    return l2_normalize(x) if self.normalize else x


def space_to_depth(x: jax.Array, block: int) -> jax.Array:
  """[B, H, W, C] -> [B, H / block, W / block, block * block * C]: each block x block
  patch becomes one pixel whose channels are the patch's pixels (row-major, then C)."""
  b, h, w, c = x.shape
  if h % block or w % block:
    raise ValueError(
      f"space_to_depth={block} needs image sides divisible by it, got {h}x{w}; change "
      "the model's input_size or space_to_depth"
    )
  x = x.reshape(b, h // block, block, w // block, block, c)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // block, w // block, block * block * c)


class Conv4(nn.Module):
  """The few-shot "Conv-4" (Vinyals et al. 2016; Snell et al. 2017), optionally wider.

  Blocks of conv 3x3 - batch norm - ReLU - max-pool 2, one per entry of `features`;
  the last map is averaged over space (at 28x28 and four blocks it is 1x1, so this is
  the published flatten) and, with `dim` > 0, projected by a Dense layer.

  Attributes:
    features: convolution widths (the published 64, 64, 64, 64).
    dim: embedding size of a final Dense layer; 0 keeps the pooled features.
    normalize: L2-normalise the output.
    flatten: the last map is flattened instead of averaged; by default the last block
      then does not pool (at 28x28: 3x3 x width features instead of width).
    pool_last: whether the last block max-pools; None (default) pools unless `flatten`.
      The real-face recipe (`face_verify:folders`) flattens a pooled 3x2 map at 56x46.
    standardize: standardise each input image (zero mean, unit variance over its
      pixels) before the first convolution, which removes global illumination.
    stem: > 0 makes the first block a strided stem: a stem x stem convolution of stride 2
      with features[0] channels, batch norm and ReLU, no pooling (a quarter of the
      first block's cost on large inputs; the FVC2002 recipe uses 5 at 128x128).
    space_to_depth: > 1 folds each b x b block of pixels into channels before the first
      convolution ([B, H, W, C] -> [B, H/b, W/b, b b C], no information lost): the net
      sees a b-times finer image at the first layer's cost at H/b (the Omniglot default
      folds 84x84 by 3).
    conv_impl: "xla", "im2col" or "auto" (see `jaxsim.models.conv`), or "im2col_train":
      im2col when training, XLA's convolution otherwise. im2col's gradients beat XLA's
      on Conv-4 at 28x28, but its forward pass alone is twice as slow (the Omniglot
      default; `python -m benchmarks.conv4_step`). The parameters are the same.
  """

  features: tuple[int, ...] = (64, 64, 64, 64)
  dim: int = 0
  normalize: bool = False
  flatten: bool = False
  pool_last: bool | None = None
  standardize: bool = False
  stem: int = 0
  space_to_depth: int = 1
  conv_impl: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if x.ndim != 4:
      raise ValueError(f"Conv4 expects NHWC images [B, H, W, C], got shape {x.shape}")
    if self.standardize:
      mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
      x = (x - mean) / (jnp.std(x, axis=(1, 2, 3), keepdims=True) + 1e-6)
    if self.space_to_depth > 1:
      x = space_to_depth(x, self.space_to_depth)
    pool_last = not self.flatten if self.pool_last is None else self.pool_last
    features, impl = self.features, self.conv_impl
    if impl == "im2col_train":
      impl = "im2col" if train else "xla"
    if impl not in conv_lib.CONVS:
      raise ValueError(
        f"Conv4 conv_impl must be im2col_train or one of {sorted(conv_lib.CONVS)}, got {impl!r}"
      )
    if self.stem:
      k = (self.stem, self.stem)
      x = nn.Conv(features[0], k, strides=(2, 2), padding="SAME", use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      features = features[1:]
    for i, filters in enumerate(features):
      x = nn.Conv(
        filters,
        (3, 3),
        padding="SAME",
        use_bias=False,
        conv_general_dilated=conv_lib.CONVS[impl],
      )(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      last = i == len(features) - 1
      if min(x.shape[1:3]) >= 2 and (pool_last or not last):
        x = conv_lib.max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1) if self.flatten else jnp.mean(x, axis=(1, 2))
    if self.dim:
      x = nn.Dense(self.dim)(x)
    return l2_normalize(x) if self.normalize else x
