"""2-D convolution as patch extraction plus one matrix product (im2col).

XLA's CPU backend lowers the gradients of strided convolutions to convolutions
with an inflated (zero-dilated) input or a window as large as the image, for
which its CPU kernels are slow at the small spatial sizes of a ResNet's later
stages. Written as `kh * kw` strided slices concatenated on the channel axis and
a dot with the reshaped kernel, the same convolution differentiates into slices,
pads and two matrix products, which XLA's CPU dot kernels run well
(`python -m benchmarks.conv_layers` prints the per-layer comparison).

At the spatial sizes where XLA's kernels are fast they beat the patch matrix,
so `auto_conv`, the default of jaxsim's ResNets, uses `xla_conv` (XLA's convolution with
a weight gradient that reads a stored input, see there) except where an output side is
smaller than the kernel, which gets im2col: the 3x3 convolutions of the last stage at 2x2
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

import functools
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


def _is_plain(
  lhs, dimension_numbers, lhs_dilation, rhs_dilation, feature_group_count=1, batch_group_count=1
) -> bool:
  """NHWC/HWIO without dilation or groups: the case of flax's `nn.Conv` that this module
  computes its own way (every other case goes to `lax.conv_general_dilated` as it is)."""
  return (
    _is_nhwc(dimension_numbers, lhs.ndim)
    and all(d == 1 for d in (lhs_dilation or (1, 1)))
    and all(d == 1 for d in (rhs_dilation or (1, 1)))
    and feature_group_count == 1
    and batch_group_count == 1
  )


def _window_slices(xp, window, strides, out_hw) -> list[jax.Array]:
  """The strided slice of `xp` [B, H, W, C] that each window offset (i, j) reads."""
  (kh, kw), (sh, sw), (ho, wo) = window, strides, out_hw
  b, _, _, c = xp.shape
  return [
    lax.slice(
      xp, (0, i, j, 0), (b, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1, c), (1, sh, sw, 1)
    )
    for i in range(kh)
    for j in range(kw)
  ]


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
  plain = _is_plain(
    lhs, dimension_numbers, lhs_dilation, rhs_dilation, feature_group_count, batch_group_count
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
  slices = _window_slices(x, (kh, kw), (sh, sw), (ho, wo))
  patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, axis=-1)
  out = lax.dot_general(
    patches.reshape(n * ho * wo, kh * kw * cin),
    rhs.reshape(kh * kw * cin, cout),
    (((1,), (0,)), ((), ())),
    precision=precision,
    preferred_element_type=preferred_element_type,
  )
  return out.reshape(n, ho, wo, cout)


def _kept(x: jax.Array, key: jax.Array) -> jax.Array:
  """`x`, computed into a buffer of its own that XLA cannot fuse into its consumers.

  A conditional is the fusion boundary: its predicate, `(bits of key[0]) | 1 != 0`, is
  always true, but XLA cannot fold it (an optimization barrier is expanded before XLA:CPU
  fuses). The other branch is never taken. If a later XLA folded the predicate, the only
  loss would be speed (`tests/models_conv_test.py` checks that the conditional is
  compiled in). Only `xla_conv` and `max_pool`'s gradient call it, on the CPU backend.
  """
  first = key.reshape(-1)[0]
  bits = lax.bitcast_convert_type(
    first, {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[first.dtype.itemsize]
  )
  return lax.cond((bits | 1) != 0, lambda v: v, lambda v: jax.tree.map(jnp.negative, v), x)


# The layout of XLA's weight-gradient convolution: the input with batch and channels
# swapped, [C, H, W, N], so that a stored [C, H, W, N] input is read as it lies.
_CHWN = ("CHWN", "HWIO", "NHWC")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_stored_input(lhs, rhs, window_strides, padding):
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, dimension_numbers=_NHWC)


def _conv_stored_input_fwd(lhs, rhs, window_strides, padding):
  y = _conv_stored_input(lhs, rhs, window_strides, padding)
  return y, (_kept(lhs.transpose(3, 1, 2, 0), rhs), rhs)


def _conv_stored_input_bwd(window_strides, padding, res, g):
  lhs_chwn, rhs = res
  c, h, w, n = lhs_chwn.shape
  conv = functools.partial(lax.conv_general_dilated, window_strides=window_strides, padding=padding)
  # The convolution is linear in each operand; its transposes are XLA's own gradients.
  # The weight gradient is that of the same convolution written on the stored layout:
  # the same kernel on the same data, without transposing the input again.
  (lhs_grad,) = jax.linear_transpose(
    lambda x: conv(x, rhs, dimension_numbers=_NHWC), jax.ShapeDtypeStruct((n, h, w, c), g.dtype)
  )(g)
  (rhs_grad,) = jax.linear_transpose(lambda k: conv(lhs_chwn, k, dimension_numbers=_CHWN), rhs)(g)
  return lhs_grad, rhs_grad


_conv_stored_input.defvjp(_conv_stored_input_fwd, _conv_stored_input_bwd)


# Inputs with fewer elements keep XLA's own plan: on face_fp's [64, 24, 24, 8] maps the
# stored input was not faster (its conditionals and transposes cost more than they save).
STORED_INPUT_MIN_SIZE = 2**19


def xla_conv(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding,
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  **kwargs,
) -> jax.Array:
  """XLA's convolution, whose weight gradient reads a stored, per-sample transposed input.

  Values and gradients equal `lax.conv_general_dilated`'s bit for bit (tested); only where
  the weight gradient's input comes from changes. XLA:CPU computes the weight gradient
  with batch and channels swapped (a [C, H, W, N] input) and by default recomputes that
  input from its producers (batch norm, residual add, ReLU: up to eleven operands, four
  or five of them [N, H, W, C] maps) inside the transposing loop, which then reads each
  map with a stride of H * W * C. Here the forward pass stores the input as
  [C, H, W, N] in a buffer of its own (`_kept`), and the backward pass computes the
  weight gradient from that buffer as it lies (the convolution written on the stored
  layout; `_conv_stored_input_bwd`).

  Measured 2026-12-03 on the 2-core EPYC (AVX-512), ResNet-18 two-tower train step of
  `benchmarks.train_step`, huge pages: the transposes' share of the step's traced kernel
  time went from 120 to 37 ms at 64 px; wall time per step, the two programs alternating
  in one process, 474 -> 456 ms at 64 px and 2250 -> 2093 ms at 128 px, with identical
  parameters after the steps. Storing [C, H, W, N] instead of [N, C, H, W] (which the
  backward pass transposed again) took the 128 px step from 1523 to 1469 ms and the 64 px
  step from 397 to 384 ms (medians, alternating in one process, 2026-12-04), parameters
  again identical. Maps under `STORED_INPUT_MIN_SIZE` elements keep XLA's own
  plan (face_fp's 48 px, width-8 towers: 25.0 against 23.2 ms per step with it).

  Used on the CPU backend for NHWC/HWIO convolutions without dilation or groups; every
  other case (and every other backend) is `lax.conv_general_dilated` itself.
  """
  plain = (
    jax.default_backend() == "cpu"
    and _is_plain(
      lhs,
      dimension_numbers,
      lhs_dilation,
      rhs_dilation,
      kwargs.get("feature_group_count", 1),
      kwargs.get("batch_group_count", 1),
    )
    and kwargs.get("precision") is None
    and kwargs.get("preferred_element_type") is None
  )
  if not plain or lhs.size < STORED_INPUT_MIN_SIZE:
    return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers, **kwargs
    )
  if isinstance(padding, str):
    padding = _explicit_padding(padding, lhs.shape[1:3], rhs.shape[:2], window_strides)
  pads = tuple(tuple(int(p) for p in pair) for pair in padding)
  return _conv_stored_input(lhs, rhs, tuple(int(s) for s in window_strides), pads)


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
  """`im2col_conv` where an output side is smaller than the kernel, else `xla_conv`.

  Further keyword arguments (`feature_group_count`, `precision`, ...) pass through.
  """
  conv = xla_conv
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


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, pads):
  return lax.reduce_window(
    x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0))
  )


def _is_2x2_blocks(window, strides, pads) -> bool:
  return tuple(window) == tuple(strides) == (2, 2) and tuple(pads) == ((0, 0), (0, 0))


def _max_pool_fwd(x, window, strides, pads):
  if _is_2x2_blocks(window, strides, pads):
    y = _max_pool(x, window, strides, pads)
    return y, (x, y)
  # Each window's maximum and the offset of its first maximum (row-major), from one chain
  # of comparisons over the strided slices that each offset reads.
  xp = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
  ho = (xp.shape[1] - window[0]) // strides[0] + 1
  wo = (xp.shape[2] - window[1]) // strides[1] + 1
  reads = _window_slices(xp, window, strides, (ho, wo))
  index_type = jnp.int8 if len(reads) <= 127 else jnp.int32
  y, first = reads[0], jnp.zeros(reads[0].shape, index_type)
  for k, read in enumerate(reads[1:], 1):
    later = read > y  # strictly greater: a tie keeps the earlier offset
    y = jnp.where(later, read, y)
    first = jnp.where(later, jnp.asarray(k, index_type), first)
  # The input's shape and dtype travel as an empty array (residuals must be arrays).
  return y, (first, jnp.zeros((0, *x.shape[1:3], 0), x.dtype))


def _first_hits(hits):
  """Each window's first maximum in row-major window order (XLA's `select_and_scatter`
  with `ge`, the rule of `nn.max_pool`'s gradient): later tied maxima are dropped."""
  taken, first = None, []
  for hit in hits:
    first.append(hit if taken is None else hit & ~taken)
    taken = hit if taken is None else taken | hit
  return first


def _max_pool_2x2_bwd(x, y, g):
  """Non-overlapping 2x2 windows: one reshape, no scatter."""
  b, h, w, c = x.shape
  ho, wo = y.shape[1:3]
  blocks = x[:, : 2 * ho, : 2 * wo].reshape(b, ho, 2, wo, 2, c)
  ym = y[:, :, None, :, None, :]
  hits = _first_hits([blocks[:, :, i : i + 1, :, j : j + 1] == ym for i in (0, 1) for j in (0, 1)])
  rows = [jnp.concatenate(hits[2 * i : 2 * i + 2], axis=4) for i in (0, 1)]
  hit = jnp.concatenate(rows, axis=2)
  dx = jnp.where(hit, g[:, :, None, :, None, :], jnp.zeros((), g.dtype)).reshape(
    b, 2 * ho, 2 * wo, c
  )
  return jnp.pad(dx, ((0, 0), (0, h - 2 * ho), (0, w - 2 * wo), (0, 0))).astype(x.dtype)


def _max_pool_bwd(window, strides, pads, res, g):
  if _is_2x2_blocks(window, strides, pads):
    return (_max_pool_2x2_bwd(*res, g),)
  first, like = res
  (b, _, _, c), (h, w) = first.shape, like.shape[1:3]
  (kh, kw), (sh, sw) = window, strides
  ho, wo = g.shape[1:3]
  zero = jnp.zeros((), g.dtype)
  # The padded input split into its sh x sw phases (rows a, a + sh, ...; columns likewise):
  # offset (i, j) of output (r, s) reads phase (i % sh, j % sw) at (r + i // sh, s + j // sw),
  # so each phase's gradient is a sum of output-sized maps shifted by whole cells, and the
  # phases interleave back into the padded map with one reshape. Before, every offset's
  # map was scattered into the full padded map (interior padding): 9 full-size maps for
  # a 3x3 window instead of 9 quarter-size ones.
  hq = -(-(h + sum(pads[0])) // sh)
  wq = -(-(w + sum(pads[1])) // sw)
  phase_rows = []
  for a in range(sh):
    phases = []
    for bb in range(sw):
      acc = jnp.zeros((b, hq, wq, c), g.dtype)
      for i in range(a, kh, sh):
        for j in range(bb, kw, sw):
          q, p = i // sh, j // sw
          mine = jnp.where(first == i * kw + j, g, zero)
          acc = acc + lax.pad(
            mine, zero, ((0, 0, 0), (q, hq - q - ho, 0), (p, wq - p - wo, 0), (0, 0, 0))
          )
      phases.append(acc)
    if jax.default_backend() == "cpu" and b * h * w * c >= STORED_INPUT_MIN_SIZE:
      # Each phase in a buffer of its own: fused into the interleave below (and the
      # batch norm gradient after it), XLA evaluated every offset's select per element.
      phases = list(_kept(tuple(phases), g))
    phase_rows.append(jnp.stack(phases, axis=3))  # [b, hq, wq, sw, c]
  dxp = jnp.stack(phase_rows, axis=2).reshape(b, hq * sh, wq * sw, c)
  top, left = pads[0][0], pads[1][0]
  return (dxp[:, top : top + h, left : left + w].astype(like.dtype),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(x: jax.Array, window=(2, 2), strides=None, padding="VALID") -> jax.Array:
  """Max pooling of NHWC maps, as `nn.max_pool(x, window, strides, padding)`, with a
  gradient that XLA:CPU runs fast.

  XLA:CPU differentiates `reduce_window` max into `select_and_scatter`, which took
  108-118 ms for the 2x2 pooling of a [128, 28, 28, 64] map on the 2-core EPYC (forward
  1.7 ms). Here non-overlapping 2x2 windows compare each block with its maximum (one
  reshape): 12 ms for that map, forward included. Other windows (a ResNet stem's 3x3/2)
  keep each window's first-maximum offset from the forward pass, and the gradient sums,
  for each of the sh x sw stride phases of the input, the output-sized maps of the
  offsets that land in it, then interleaves the phases with one reshape. Forward and
  gradient of the stem's 3x3/2 pooling (2026-12-03, idle): 84 against 189 ms for flax's
  at [64, 64, 64, 64] (128 px input) and 19 against 54 ms at [64, 32, 32, 64] (the
  previous version, which scattered each offset's map into the full padded map: 119-134
  and 33-40 ms). Where a window holds tied maxima, its gradient goes to the first of
  them in row-major window order, as XLA's `select_and_scatter` gives it for
  `nn.max_pool`: the gradients equal flax's, ties included (up to the order in which
  overlapping windows' gradients are summed). (Sharing the gradient among ties, also a
  subgradient, changed training on images with flat regions: positive ties after a
  ReLU are common there.)

  On the CPU backend, maps of `STORED_INPUT_MIN_SIZE` elements or more compute each
  phase sum into a buffer of its own (`_kept`); fused into the interleave, XLA evaluated
  every offset's select per element (the stem pooling's gradient: 146 ms of traced kernel
  time per 128 px two-tower step of `benchmarks.train_step`). The two-tower step, the two
  programs alternating in one process (2026-12-04): 1479 -> 1422 ms at 128 px and 370 ->
  357 ms at 64 px (medians of 8 and 10 rounds). The pooling gradient is the same either
  way, ties included (tested bit for bit), but the whole train step is not bit for
  bit: the face_verify default's contrastive step on tied inputs first differed at step
  16, in one channel of the stem. The likely cause (not proven): XLA recomputes the
  pooled map, batch norm and ReLU included, inside whichever fusion reads it, and a
  changed plan can round that recomputation differently and move a window's first
  maximum among near-ties.

  Args:
    x: [B, H, W, C].
    window: (kh, kw).
    strides: (sh, sw); default: the window (non-overlapping).
    padding: "VALID", "SAME" or ((top, bottom), (left, right)); padding never wins.
  """
  if x.ndim != 4:
    raise ValueError(f"max_pool expects NHWC maps [B, H, W, C], got shape {x.shape}")
  window = tuple(int(k) for k in window)
  strides = window if strides is None else tuple(int(s) for s in strides)
  pads = tuple(_explicit_padding(padding, x.shape[1:3], window, strides))
  if any(x.shape[1 + a] + sum(pads[a]) < window[a] for a in (0, 1)):
    raise ValueError(
      f"max_pool: a {window[0]}x{window[1]} window does not fit maps of {x.shape[1:3]} "
      f"with padding {pads}"
    )
  return _max_pool(x, window, strides, pads)


def max_pool_2x2(x: jax.Array) -> jax.Array:
  """2x2 max pooling of stride 2 (VALID; an odd last row or column is dropped)."""
  return max_pool(x, (2, 2), (2, 2))
