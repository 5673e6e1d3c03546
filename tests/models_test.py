"""Encoders and pair models: published shapes and parameter counts, masking, weight sharing."""

import inspect

import _jitted
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsim import models
from jaxsim.models import resnet, small_cnn


def _param_count(module, *args):
  shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a), *args)
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize(
  "depth,expected",
  # torchvision resnet18/34/50 parameter counts minus their 1000-way fc layer.
  [(18, 11_689_512 - 513_000), (34, 21_797_672 - 513_000), (50, 25_557_032 - 2_049_000)],
)
def test_resnet_trunk_matches_published_parameter_count(depth, expected):
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  assert _param_count(models.ResNet(depth=depth), x) == expected


def test_small_input_stem_swaps_only_the_first_convolution():
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  big = _param_count(models.ResNet(depth=18), x)
  small = _param_count(models.ResNet(depth=18, small_inputs=True), x)
  assert big - small == (7 * 7 - 3 * 3) * 3 * 64


def test_resnet_encoder_outputs_unit_embeddings():
  enc = models.ResNetEncoder(depth=18, width=4, small_inputs=True, dim=16, head_batch_norm=True)
  x = jax.random.uniform(jax.random.key(1), (4, 16, 16, 3))
  variables = _jitted.init(enc, jax.random.key(0), x)
  assert "batch_stats" in variables
  y, updates = _jitted.apply(enc, variables, x, train=True, mutable=["batch_stats"])
  assert y.shape == (4, 16)
  np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), 1.0, rtol=1e-5)
  # Train mode updates the running statistics.
  before = jax.tree.leaves(variables["batch_stats"])
  after = jax.tree.leaves(updates["batch_stats"])
  assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_bfloat16_block_computes_in_bf16_with_float32_params():
  block = resnet.BasicBlock(filters=4, strides=2, dtype=jnp.bfloat16)
  x = jnp.ones((2, 8, 8, 3))
  variables = _jitted.init(block, jax.random.key(0), x, train=False)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
  y = _jitted.apply(block, variables, x, train=False)
  assert y.dtype == jnp.bfloat16 and y.shape == (2, 4, 4, 4)
  enc = models.encoder_from_config({"name": "resnet34", "dtype": "bfloat16", "dim": 32})
  assert (enc.depth, enc.dtype, enc.dim) == (34, jnp.bfloat16, 32)


def test_koch_network_has_the_published_shapes_and_38_95m_parameters():
  x = jax.ShapeDtypeStruct((1, 105, 105, 1), jnp.float32)
  model = models.KochSiameseModel(models.KochEncoder())
  shapes = jax.eval_shape(lambda a, b: model.init(jax.random.key(0), a, b), x, x)["params"]
  enc = shapes["encoder"]
  assert [enc[f"Conv_{i}"]["kernel"].shape for i in range(4)] == [
    (10, 10, 1, 64),
    (7, 7, 64, 128),
    (4, 4, 128, 128),
    (4, 4, 128, 256),
  ]
  assert enc["Dense_0"]["kernel"].shape == (6 * 6 * 256, 4096)  # 105x105 input, as in the paper
  assert sum(int(np.prod(v.shape)) for v in jax.tree.leaves(shapes)) == 38_951_745


def test_koch_pair_head_is_weighted_l1_and_symmetric():
  model = models.KochSiameseModel(models.KochEncoder(features=(4, 4, 4, 4), dense=8))
  a = jax.random.uniform(jax.random.key(1), (3, 65, 65, 1))
  b = jax.random.uniform(jax.random.key(2), (3, 65, 65, 1))
  variables = _jitted.init(model, jax.random.key(0), a, b)
  out = _jitted.apply(model, variables, a, b)
  head = variables["params"]["pair_head"]["Dense_0"]
  h_a, h_b = out["embeddings_a"], out["embeddings_b"]
  assert h_a.shape == (3, 8) and np.all((h_a > 0) & (h_a < 1))  # sigmoid features
  expected = jnp.abs(h_a - h_b) @ head["kernel"][:, 0] + head["bias"][0]
  np.testing.assert_allclose(out["logits"], expected, rtol=1e-5)
  np.testing.assert_allclose(
    _jitted.apply(model, variables, b, a)["logits"], out["logits"], rtol=1e-6
  )
  # The head as a method: pair logits from features embedded once.
  logits = _jitted.apply(model, variables, h_a, h_b, method=model.pair_logits)
  np.testing.assert_allclose(logits, out["logits"], rtol=1e-6)


def test_face_auth_cnn_gives_48_dims():
  enc = models.FaceAuthCNN()
  x = jnp.ones((2, 32, 32, 3))
  y = _jitted.apply(enc, _jitted.init(enc, jax.random.key(0), x), x)
  assert y.shape == (2, 48)


def test_conv4_pooled_flatten_and_input_standardisation():
  enc = models.Conv4(features=(4, 8, 8, 8), dim=16, flatten=True, pool_last=True, standardize=True)
  x = jax.random.uniform(jax.random.key(1), (3, 56, 46, 1))
  variables = _jitted.init(enc, jax.random.key(0), x)
  # 56x46 pooled four times is 3x2: the Dense kernel sees 3 * 2 * 8 inputs.
  assert variables["params"]["Dense_0"]["kernel"].shape == (3 * 2 * 8, 16)
  unpooled = models.Conv4(features=(4, 8, 8, 8), dim=16, flatten=True)
  shapes = jax.eval_shape(unpooled.init, jax.random.key(0), x)
  assert shapes["params"]["Dense_0"]["kernel"].shape[0] == 7 * 5 * 8
  # Standardised inputs: a global gain and offset of the image changes nothing.
  y = _jitted.apply(enc, variables, x)
  np.testing.assert_allclose(_jitted.apply(enc, variables, 0.5 * x + 0.2), y, atol=1e-4)


def test_conv4_strided_stem_halves_the_input_without_pooling():
  enc = models.Conv4(features=(4, 8, 8), stem=5, dim=0)
  x = jnp.ones((2, 32, 32, 1))
  variables = _jitted.init(enc, jax.random.key(0), x)
  assert variables["params"]["Conv_0"]["kernel"].shape == (5, 5, 1, 4)
  _, state = _jitted.apply(enc, variables, x, capture_intermediates=True, mutable=["intermediates"])
  # stem 32 -> 16 (stride 2, no pool), then two conv-pool blocks: 16 -> 8 -> 4.
  assert state["intermediates"]["Conv_0"]["__call__"][0].shape == (2, 16, 16, 4)
  assert state["intermediates"]["Conv_2"]["__call__"][0].shape == (2, 8, 8, 8)
  assert _jitted.apply(enc, variables, x).shape == (2, 8)


def test_space_to_depth_folds_blocks_into_channels_and_conv4_uses_it():
  x = jnp.arange(2 * 4 * 6 * 3, dtype=jnp.float32).reshape(2, 4, 6, 3)
  y = small_cnn.space_to_depth(x, 2)
  assert y.shape == (2, 2, 3, 12)
  # Pixel (i, j) of the folded map holds the 2x2 patch at (2i, 2j), row-major, then C.
  np.testing.assert_array_equal(y[1, 1, 2].reshape(2, 2, 3), x[1, 2:4, 4:6])
  enc = models.Conv4(features=(4, 8), flatten=True, space_to_depth=2)
  variables = _jitted.init(enc, jax.random.key(0), jnp.ones((2, 16, 16, 1)))
  # The first convolution sees 4 channels; 16 -> 8 -> pool 4 (the last block unpooled).
  assert variables["params"]["Conv_0"]["kernel"].shape == (3, 3, 4, 4)
  assert _jitted.apply(enc, variables, jnp.ones((2, 16, 16, 1))).shape == (2, 4 * 4 * 8)
  with pytest.raises(ValueError, match="space_to_depth=2 needs image sides divisible"):
    small_cnn.space_to_depth(jnp.ones((1, 5, 4, 1)), 2)


def test_conv4_im2col_train_uses_im2col_only_when_training_and_same_values():
  x = jax.random.uniform(jax.random.key(1), (2, 12, 12, 1))
  nets = {
    impl: models.Conv4(features=(4, 8), flatten=True, conv_impl=impl)
    for impl in ("xla", "im2col", "im2col_train")
  }
  variables = _jitted.init(nets["xla"], jax.random.key(0), x)
  convs = lambda impl, train: str(  # noqa: E731
    jax.make_jaxpr(lambda v: nets[impl].apply(v, x, train=train, mutable=["batch_stats"]))(
      variables
    )
  ).count("conv_general_dilated")
  assert convs("im2col_train", False) == 2 and convs("im2col_train", True) == 0
  for train in (False, True):
    out = _jitted.apply(nets["im2col_train"], variables, x, train=train, mutable=["batch_stats"])
    ref = _jitted.apply(nets["xla"], variables, x, train=train, mutable=["batch_stats"])
    out, ref = out[0], ref[0]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="conv_impl"):
    models.Conv4(conv_impl="winograd").init(jax.random.key(0), x)


def test_digit_cnn_unit_embeddings():
  enc = models.DigitCNN(dim=10)
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
  y = _jitted.apply(enc, _jitted.init(enc, jax.random.key(0), x), x)
  assert y.shape == (3, 10)
  np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), 1.0, rtol=1e-5)


def _text(strings, length):
  ids = np.zeros((len(strings), length), np.int32)
  mask = np.zeros((len(strings), length), bool)
  for i, s in enumerate(strings):
    ids[i, : len(s)] = [ord(c) for c in s]
    mask[i, : len(s)] = True
  return ids, mask


def test_text_encoder_reads_text_not_labels_and_ignores_padding():
  enc = models.CharTextEncoder(dim=16)
  # Its only inputs are the characters and their mask: no class id can reach it.
  assert list(inspect.signature(enc.__call__).parameters) == ["text_ids", "text_mask", "train"]
  ids, mask = _text(["Three", "3", "tree", "tHREE"], 8)
  variables = _jitted.init(enc, jax.random.key(0), ids, mask)
  y = _jitted.apply(enc, variables, ids, mask)
  assert y.shape == (4, 16)
  # Different spellings of the same digit get different embeddings (it reads the text).
  assert float(jnp.min(jnp.linalg.norm(y[:, None] - y[None], axis=-1) + 10 * jnp.eye(4))) > 1e-3
  # Longer padding, with garbage ids under a zero mask, changes nothing.
  ids2, mask2 = _text(["Three", "3", "tree", "tHREE"], 12)
  ids2[~mask2] = 77
  np.testing.assert_allclose(_jitted.apply(enc, variables, ids2, mask2), y, atol=1e-6)
  # An all-padding row stays finite.
  empty = _jitted.apply(enc, variables, np.zeros((1, 8), np.int32), np.zeros((1, 8), bool))
  assert np.all(np.isfinite(empty))


def test_siamese_shares_weights_and_two_tower_does_not():
  enc = models.FaceAuthCNN(features=(4, 4), dim=6)
  a = jax.random.uniform(jax.random.key(1), (2, 12, 12, 1))
  b = jax.random.uniform(jax.random.key(2), (2, 12, 12, 1))
  siamese = models.SiameseModel(enc, log_temperature_init=np.log(10.0), bias_init=-10.0)
  v = _jitted.init(siamese, jax.random.key(0), a, b)
  out = _jitted.apply(siamese, v, a, b)
  one = _jitted.apply(siamese, v, b)
  np.testing.assert_allclose(out["embeddings_b"], one["embeddings_a"], rtol=1e-6)
  np.testing.assert_allclose(out["log_temperature"], np.log(10.0), rtol=1e-6)
  assert float(out["bias"]) == -10.0
  towers = models.TwoTowerModel(enc, enc.clone())
  v2 = _jitted.init(towers, jax.random.key(0), a, b)
  assert set(v2["params"]) == {"encoder_a", "encoder_b"}
  out2 = _jitted.apply(towers, v2, a, b)
  assert "log_temperature" not in out2
  # Separate weights: the same image gives different embeddings in the two towers.
  assert not np.allclose(
    towers.apply(v2, a=a)["embeddings_a"], towers.apply(v2, b=a)["embeddings_b"]
  )


def test_two_tower_image_text():
  model = models.TwoTowerModel(
    models.DigitCNN(features=(4, 4), hidden=8, dim=8), models.CharTextEncoder(dim=8)
  )
  ids, mask = _text(["seven", "7"], 6)
  images = jnp.ones((2, 28, 28, 1))
  v = _jitted.init(model, jax.random.key(0), images, (ids, mask))
  out = _jitted.apply(model, v, images, (ids, mask))
  assert out["embeddings_a"].shape == out["embeddings_b"].shape == (2, 8)


@pytest.mark.parametrize(
  "cfg",
  [
    {"kind": "siamese", "encoder": {"name": "digit_cnn", "features": (2,), "dim": 8}},
    {
      "kind": "two_tower",
      "log_temperature_init": 2.3,
      "encoder_a": {"name": "digit_cnn", "features": (2, 2), "dim": 8},
      "encoder_b": {"name": "face_auth_cnn", "dim": 8},
    },
    {"kind": "koch", "encoder": {"name": "koch", "features": (4, 4, 4, 4), "dense": 8}},
  ],
)
def test_model_from_config(cfg):
  model = models.model_from_config(cfg)
  size = 65 if cfg["kind"] == "koch" else 16
  x = jnp.ones((2, size, size, 1))
  variables = _jitted.init(model, jax.random.key(0), x, x)
  out = _jitted.apply(model, variables, x, x)
  assert out["embeddings_a"].shape[0] == 2
  assert all(np.all(np.isfinite(v)) for v in out.values())
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))


def test_koch_rejects_inputs_too_small_for_its_valid_convolutions():
  with pytest.raises(ValueError, match="at least 65x65"):
    models.KochEncoder().init(jax.random.key(0), jnp.ones((1, 64, 64, 1)))


def test_unknown_encoder_is_a_clear_error():
  with pytest.raises(ValueError, match="unknown encoder 'vgg'"):
    models.encoder_from_config({"name": "vgg"})
