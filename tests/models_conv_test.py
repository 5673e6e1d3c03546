"""im2col convolution and 2x2 max pooling: equal to XLA's / flax's in values and gradients."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import models, parallel, train
from jaxsim.models import conv

NHWC = ("NHWC", "HWIO", "NHWC")


def _bn_relu_conv_value_and_grad(f, strides, padding):
  """jit(value_and_grad) of sum(sin(f(relu(batch_norm(x)), w))): batch norm and ReLU
  before the convolution are the producers XLA would fuse into its transposes."""

  def fn(x, w):
    h = jax.nn.relu((x - x.mean((0, 1, 2))) * jax.lax.rsqrt(x.var((0, 1, 2)) + 1e-5))
    return jnp.sum(jnp.sin(f(h, w, strides, padding, dimension_numbers=NHWC)))

  return jax.jit(jax.value_and_grad(fn, (0, 1)))


def _conv_prims(fn, *args) -> int:
  return str(jax.make_jaxpr(fn)(*args)).count("conv_general_dilated")


@pytest.mark.parametrize(
  "side,kernel,stride,padding",
  [
    (9, 3, 1, [(1, 1), (1, 1)]),
    (9, 3, 2, [(1, 1), (1, 1)]),
    (10, 7, 2, [(3, 3), (3, 3)]),
    (8, 1, 2, [(0, 0), (0, 0)]),
    (2, 3, 1, [(1, 1), (1, 1)]),
    (4, 3, 2, [(1, 1), (1, 1)]),
    (7, 3, 2, "SAME"),
    (7, 3, 1, "VALID"),
    (6, 2, 1, [(0, 1), (1, 0)]),
  ],
)
def test_im2col_matches_xla_values_and_gradients(side, kernel, stride, padding):
  rng = np.random.default_rng(side * 100 + kernel * 10 + stride)
  x = jnp.asarray(rng.normal(size=(3, side, side, 5)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, 5, 4)), jnp.float32)

  def loss(f):
    return lambda x, w: jnp.sum(jnp.sin(f(x, w, (stride, stride), padding, dimension_numbers=NHWC)))

  # Jitted, as in training (and one compile each instead of one per eager operation).
  ref = jax.lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=NHWC)
  grads_ref = jax.jit(jax.grad(loss(jax.lax.conv_general_dilated), (0, 1)))(x, w)
  for f in (conv.im2col_conv, conv.auto_conv):
    out = jax.jit(lambda x, w, f=f: f(x, w, (stride, stride), padding, dimension_numbers=NHWC))
    np.testing.assert_allclose(out(x, w), ref, rtol=1e-5, atol=1e-4)
    for g, g_ref in zip(jax.jit(jax.grad(loss(f), (0, 1)))(x, w), grads_ref, strict=True):
      np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
  "shape,kernel,stride,padding",
  [
    ((8, 32, 32, 64), 3, 1, [(1, 1), (1, 1)]),
    ((8, 32, 32, 64), 3, 2, "SAME"),
    ((8, 32, 32, 64), 1, 2, [(0, 0), (0, 0)]),
    ((48, 64, 64, 3), 7, 2, [(3, 3), (3, 3)]),
  ],
)
def test_xla_conv_stores_its_input_and_matches_xla_bit_for_bit(shape, kernel, stride, padding):
  rng = np.random.default_rng(kernel * 10 + stride)
  # Values on a grid of halves: many ties, as in images with flat regions.
  x = jnp.asarray(np.round(rng.normal(size=shape) * 2) / 2, jnp.float32)
  w = jnp.asarray(rng.normal(size=(kernel, kernel, shape[-1], 16)) / kernel, jnp.float32)
  assert x.size >= conv.STORED_INPUT_MIN_SIZE
  loss = functools.partial(_bn_relu_conv_value_and_grad, strides=(stride, stride), padding=padding)
  got, ref = loss(conv.xla_conv)(x, w), loss(jax.lax.conv_general_dilated)(x, w)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
    np.testing.assert_array_equal(a, b)
  compiled = loss(conv.xla_conv).lower(x, w).compile().as_text()
  assert "conditional" in compiled  # the stored input's fusion boundary survived XLA
  small = jnp.zeros((2, 8, 8, shape[-1]))
  assert "conditional" not in loss(conv.xla_conv).lower(small, w).compile().as_text()


def test_xla_conv_stored_input_sharded_over_the_batch_matches_xla():
  # The stored input is [C, H, W, N]: sharded over the batch, its last axis is split.
  if len(jax.devices()) < 2:
    pytest.skip("needs 2 devices (tests/conftest.py simulates 8 CPU devices)")
  mesh = parallel.data_mesh(jax.devices()[:2])
  rng = np.random.default_rng(5)
  x = jnp.asarray(np.round(rng.normal(size=(16, 32, 32, 64)) * 2) / 2, jnp.float32)
  w = jnp.asarray(rng.normal(size=(3, 3, 64, 32)) / 9, jnp.float32)
  x = jax.device_put(x, parallel.batch_sharding(mesh))
  loss = functools.partial(_bn_relu_conv_value_and_grad, strides=(2, 2), padding=((1, 1), (1, 1)))
  assert x.size >= conv.STORED_INPUT_MIN_SIZE
  got, ref = loss(conv.xla_conv)(x, w), loss(jax.lax.conv_general_dilated)(x, w)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
  "shape,window,strides,padding",
  [
    ((2, 8, 8, 3), (2, 2), (2, 2), "VALID"),
    ((2, 7, 9, 3), (2, 2), (2, 2), "VALID"),
    ((1, 21, 21, 2), (2, 2), (2, 2), "VALID"),
    ((3, 2, 3, 1), (2, 2), (2, 2), "VALID"),
    ((2, 9, 9, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # a ResNet stem's pooling
    ((2, 8, 10, 2), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((2, 7, 7, 2), (3, 2), (1, 2), "SAME"),
    ((1, 6, 6, 2), (2, 2), (1, 1), "VALID"),
    ((2, 10, 11, 2), (2, 2), (3, 3), "VALID"),  # gaps between windows
    ((2, 8, 8, 2), (2, 2), (2, 2), ((1, 0), (0, 1))),  # 2x2 blocks, shifted by padding
    ((8, 32, 32, 64), (3, 3), (2, 2), ((1, 1), (1, 1))),  # phases kept in own buffers
  ],
)
def test_max_pool_matches_flax_values_and_gradients(shape, window, strides, padding):
  x = jnp.asarray(np.random.default_rng(sum(shape)).normal(size=shape), jnp.float32)
  ref = lambda x: nn.max_pool(x, window, strides, padding)  # noqa: E731
  w = jnp.asarray(np.random.default_rng(1).normal(size=ref(x).shape), jnp.float32)
  np.testing.assert_array_equal(conv.max_pool(x, window, strides, padding), ref(x))
  np.testing.assert_allclose(
    jax.jit(jax.grad(lambda x: jnp.sum(conv.max_pool(x, window, strides, padding) * w)))(x),
    jax.grad(lambda x: jnp.sum(ref(x) * w))(x),
    atol=1e-6,
  )
  if window == strides == (2, 2) and padding == "VALID":
    np.testing.assert_array_equal(conv.max_pool_2x2(x), ref(x))
  # The cotangent as an argument: a constant one would let XLA fold the conditional away.
  grad = jax.jit(jax.grad(lambda x, w: jnp.sum(conv.max_pool(x, window, strides, padding) * w)))
  kept = "conditional" in grad.lower(x, w).compile().as_text()
  assert kept == (window != strides and x.size >= conv.STORED_INPUT_MIN_SIZE)


@pytest.mark.parametrize(
  "window, strides, padding",
  [((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), ((1, 1), (1, 1))), ((3, 2), (1, 2), "SAME")],
)
def test_max_pool_gives_tied_maxima_flax_gradient(window, strides, padding):
  # Flat regions: many windows hold several equal maxima (positive, as after a ReLU on
  # an image's uniform background). The gradient goes to the first, exactly as flax's.
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.integers(0, 3, size=(2, 9, 8, 3)), jnp.float32)
  ref = lambda x: nn.max_pool(x, window, strides, padding)  # noqa: E731
  w = jnp.asarray(rng.normal(size=ref(x).shape), jnp.float32)
  # Where windows overlap, one element sums several windows' gradients, possibly in
  # another order than XLA's (1 ulp); a different tie rule would move whole gradients.
  np.testing.assert_allclose(
    jax.jit(jax.grad(lambda x: jnp.sum(conv.max_pool(x, window, strides, padding) * w)))(x),
    jax.grad(lambda x: jnp.sum(ref(x) * w))(x),
    rtol=0 if window == strides else 1e-6,
    atol=0,
  )


def test_max_pool_gradient_kept_in_phases_equals_the_fused_one_bit_for_bit(monkeypatch):
  # A ResNet stem's 3x3/2 pooling on a map above the threshold, with many tied maxima and
  # cotangents of very different sizes (elements in four windows sum four of them).
  rng = np.random.default_rng(7)
  x = jnp.asarray(rng.integers(0, 3, size=(8, 32, 32, 64)), jnp.float32)
  scale = 10.0 ** rng.integers(-4, 5, (8, 16, 16, 64))
  g = jnp.asarray(rng.normal(size=(8, 16, 16, 64)) * scale, jnp.float32)

  def grad():
    f = lambda x: conv.max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))  # noqa: E731
    fn = jax.jit(lambda x, g: jax.vjp(f, x)[1](g)[0])
    return fn(x, g), "conditional" in fn.lower(x, g).compile().as_text()

  assert x.size >= conv.STORED_INPUT_MIN_SIZE
  kept, has_cond = grad()
  monkeypatch.setattr(conv, "STORED_INPUT_MIN_SIZE", 2**40)
  fused, has_cond_fused = grad()
  assert has_cond and not has_cond_fused
  np.testing.assert_array_equal(kept, fused)


def test_max_pool_2x2_first_tie_takes_the_gradient_and_errors():
  x = jnp.asarray([[0.0, 1.0], [1.0, 1.0]]).reshape(1, 2, 2, 1)
  g = jax.grad(lambda x: conv.max_pool_2x2(x).sum())(x)
  np.testing.assert_array_equal(g[0, ..., 0], [[0.0, 1.0], [0.0, 0.0]])
  with pytest.raises(ValueError, match="NHWC"):
    conv.max_pool_2x2(jnp.zeros((4, 4, 1)))
  with pytest.raises(ValueError, match="does not fit"):
    conv.max_pool_2x2(jnp.zeros((1, 1, 4, 1)))


def test_auto_uses_im2col_only_where_an_output_side_is_smaller_than_the_kernel():
  w3 = jnp.zeros((3, 3, 4, 4))
  small, large = jnp.zeros((2, 2, 2, 4)), jnp.zeros((2, 8, 8, 4))
  auto = lambda s: lambda x, w: conv.auto_conv(x, w, (s, s), [(1, 1)] * 2, dimension_numbers=NHWC)  # noqa: E731
  assert _conv_prims(auto(1), small, w3) == 0  # 2x2 output, 3x3 kernel: im2col
  assert _conv_prims(auto(2), jnp.zeros((2, 4, 4, 4)), w3) == 0  # 4 -> 2
  assert _conv_prims(auto(1), large, w3) == 1  # XLA's convolution
  assert _conv_prims(auto(2), large, w3) == 1  # 8 -> 4 >= 3


def test_unsupported_cases_fall_back_to_xla():
  x, w = jnp.ones((1, 6, 6, 2)), jnp.ones((3, 3, 2, 2))
  dilated = lambda x, w: conv.im2col_conv(  # noqa: E731
    x, w, (1, 1), [(2, 2)] * 2, rhs_dilation=(2, 2), dimension_numbers=NHWC
  )
  nchw = lambda x, w: conv.im2col_conv(  # noqa: E731
    x, w, (1, 1), [(1, 1)] * 2, dimension_numbers=("NCHW", "OIHW", "NCHW")
  )
  assert _conv_prims(dilated, x, w) == 1
  assert _conv_prims(nchw, jnp.ones((1, 2, 6, 6)), jnp.ones((2, 2, 3, 3))) == 1
  np.testing.assert_allclose(
    dilated(x, w),
    jax.lax.conv_general_dilated(
      x, w, (1, 1), [(2, 2)] * 2, rhs_dilation=(2, 2), dimension_numbers=NHWC
    ),
  )


def test_resnet_conv_impls_share_parameters_and_outputs():
  x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 64, 64, 3)), jnp.float32)
  encoders = {
    impl: models.ResNetEncoder(depth=18, width=8, dim=16, conv_impl=impl)
    for impl in ("xla", "auto", "im2col")
  }
  init = functools.partial(jax.jit, compiler_options=train.INIT_COMPILER_OPTIONS)
  variables = init(encoders["xla"].init)(jax.random.key(0), x)
  ref = jax.jit(encoders["xla"].apply)(variables, x)
  for impl in ("auto", "im2col"):
    v = jax.eval_shape(encoders[impl].init, jax.random.key(0), x)
    assert jax.tree.structure(v) == jax.tree.structure(variables)
    out = jax.jit(encoders[impl].apply)(variables, x)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match="conv_impl"):
    models.ResNetEncoder(depth=18, width=8, conv_impl="fast").init(jax.random.key(0), x)
