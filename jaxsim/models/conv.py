"""2-D convolution as patch extraction plus one matrix product (im2col).

XLA's CPU backend lowers the gradients of strided convolutions to convolutions
with an inflated (zero-dilated) input or a window as large as the image, for
which its CPU kernels are slow at the small spatial sizes of a ResNet's later
stages. Written as `kh * kw` strided slices concatenated on the channel axis and
a dot with the reshaped kernel, the same convolution differentiates into slices,
pads and two matrix products, which XLA's CPU dot kernels run well
(`python -m benchmarks.conv_layers` prints the per-layer comparison).

At the spatial sizes where XLA's kernels are fast they beat the patch matrix,
so `auto_conv`, the default of jaxsim's ResNets, uses im2col only where an output
side is smaller than the kernel: the 3x3 convolutions of the last stage at 2x2
(a 64 px input) and the strided convolution that leads into it. Measured
2026-11-23 on a 2-core AMD EPYC (Zen 4), batch 64: a 3x3 512-channel convolution
at 2x2 took 559 ms forward and 569 ms for the input gradient in XLA against 12.9
and 12.0 ms as im2col (PyTorch: 11.1 and 23.3 ms).

`im2col_conv` and `auto_conv` have the signature of `jax.lax.conv_general_dilated` for the case
flax's `nn.Conv` uses (NHWC inputs, HWIO kernels, no dilation, one feature group)
and defers to XLA's convolution in every other case, so they can be passed as
`nn.Conv(..., conv_general_dilated=auto_conv)`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

_NHWC = ("NHWC", "HWIO", "NHWC")


def _explicit_padding(padding, in_sizes, kernel, strides) -> list[tuple[int, int]]:
  if isinstance(padding, str):
    return list(lax.padtype_to_pads(in_sizes, kernel, strides, padding))
  return [tuple(int(p) for p in pair) for pair in padding]


def _is_nhwc(dimension_numbers, ndim: int) -> bool:
  if ndim != 4:
    return False
  if dimension_numbers is None:
    return False
  dn = lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), dimension_numbers)
  return dn == lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1), _NHWC)


def im2col_conv(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding,
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  batch_group_count: int = 1,
  precision=None,
  preferred_element_type=None,
) -> jax.Array:
  """`lax.conv_general_dilated` computed as strided slices and one dot (NHWC/HWIO)."""
  plain = (
    _is_nhwc(dimension_numbers, lhs.ndim)
    and all(d == 1 for d in (lhs_dilation or (1, 1)))
    and all(d == 1 for d in (rhs_dilation or (1, 1)))
    and feature_group_count == 1
    and batch_group_count == 1
  )
  if not plain:
    return lax.conv_general_dilated(
      lhs,
      rhs,
      window_strides,
      padding,
      lhs_dilation,
      rhs_dilation,
      dimension_numbers,
      feature_group_count,
      batch_group_count,
      precision,
      preferred_element_type,
    )
  kh, kw, cin, cout = rhs.shape
  sh, sw = window_strides
  pads = _explicit_padding(padding, lhs.shape[1:3], (kh, kw), (sh, sw))
  x = jnp.pad(lhs, [(0, 0), pads[0], pads[1], (0, 0)])
  n, hp, wp, _ = x.shape
  ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
  if kh == kw == 1:
    patches = x[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, :]
  else:
    patches = jnp.concatenate(
      [
        lax.slice(
          x, (0, i, j, 0), (n, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, cin), (1, sh, sw, 1)
        )
        for i in range(kh)
        for j in range(kw)
      ],
      axis=-1,
    )
  out = lax.dot_general(
    patches.reshape(n * ho * wo, kh * kw * cin),
    rhs.reshape(kh * kw * cin, cout),
    (((1,), (0,)), ((), ())),
    precision=precision,
    preferred_element_type=preferred_element_type,
  )
  return out.reshape(n, ho, wo, cout)


def auto_conv(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding,
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  **kwargs,
) -> jax.Array:
  """`im2col_conv` where an output side is smaller than the kernel, else XLA's conv.

  Further keyword arguments (`feature_group_count`, `precision`, ...) pass through.
  """
  conv = lax.conv_general_dilated
  if _is_nhwc(dimension_numbers, lhs.ndim):
    kh, kw = rhs.shape[:2]
    pads = _explicit_padding(padding, lhs.shape[1:3], (kh, kw), window_strides)
    ho = (lhs.shape[1] + sum(pads[0]) - kh) // window_strides[0] + 1
    wo = (lhs.shape[2] + sum(pads[1]) - kw) // window_strides[1] + 1
    if ho < kh or wo < kw:
      conv = im2col_conv
  return conv(
    lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, **kwargs
  )


CONVS = {"xla": lax.conv_general_dilated, "im2col": im2col_conv, "auto": auto_conv}
