"""Grain pipelines: batch contracts, determinism, checkpoint restore, process sharding."""

import numpy as np
import pytest
import scipy.ndimage

from jaxsim.data import pipeline, preprocess
from jaxsim.data.sources import digits_text, face_fingerprint, faces, fingerprints

FACES = faces.SyntheticFaces(12, 4, image_size=16, seed=0)


def _take(ds, n, **kwargs):
  it = pipeline.make_iterator(ds, **kwargs)
  return [next(it) for _ in range(n)]


def _equal(a, b):
  return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_pair_batches_contract_and_labels():
  (batch,) = _take(pipeline.pair_batches(FACES, batch_size=32, seed=1, positive_fraction=0.5), 1)
  assert set(batch) == {"image_a", "image_b", "label"}
  assert batch["image_a"].shape == (32, 16, 16, 3) and batch["image_a"].dtype == np.float32
  assert batch["label"].dtype == np.int32 and 0 < batch["label"].sum() < 32
  assert batch["image_a"].min() >= 0 and batch["image_a"].max() <= 1


def test_same_seed_same_batches_other_seed_other_batches():
  make = lambda seed: pipeline.image_batches(FACES, batch_size=8, seed=seed)  # noqa: E731
  a, b, c = _take(make(5), 3), _take(make(5), 3, num_threads=0), _take(make(6), 3)
  assert all(_equal(x, y) for x, y in zip(a, b, strict=True))
  assert not _equal(a[0], c[0])


@pytest.mark.parametrize(
  "make",
  [
    lambda: pipeline.pair_batches(FACES, batch_size=4, seed=2),
    lambda: pipeline.pxk_batches(FACES, p=3, k=2, seed=2),
    lambda: pipeline.image_batches(FACES, batch_size=4, seed=2, num_epochs=3),
  ],
)
def test_restored_iterator_continues_with_the_next_batch(make):
  it = pipeline.make_iterator(make())
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(2)]
  resumed = pipeline.make_iterator(make())
  resumed.set_state(state)
  assert all(_equal(next(resumed), e) for e in expected)


def test_iterator_state_through_grain_checkpoint_handler(tmp_path):
  grain_checkpoint = pytest.importorskip("grain.checkpoint")
  make = lambda: pipeline.pxk_batches(FACES, p=3, k=2, seed=4)  # noqa: E731
  it = pipeline.make_iterator(make())
  for _ in range(3):
    next(it)
  handler = grain_checkpoint.CheckpointHandler()
  handler.save(tmp_path, item=it)
  expected = next(it)
  restored = handler.restore(tmp_path, item=pipeline.make_iterator(make()))
  assert _equal(next(restored), expected)


def test_epochs_visit_every_record_once_in_a_new_order():
  ds = pipeline.image_batches(
    FACES, np.arange(0, 48, 2), batch_size=8, seed=0, augment=False, num_epochs=2
  )
  batches = list(pipeline.make_iterator(ds))
  assert len(batches) == 6
  first = np.concatenate([b["identity"] for b in batches[:3]])
  assert sorted(first.tolist()) == sorted(FACES.identities[::2].tolist())
  images = [np.concatenate([b["image"] for b in batches[i : i + 3]]) for i in (0, 3)]
  assert not np.array_equal(images[0], images[1])  # reshuffled


@pytest.mark.parametrize(
  "make",
  [
    lambda **kw: pipeline.image_batches(FACES, batch_size=8, seed=3, **kw),
    lambda **kw: pipeline.pair_batches(FACES, batch_size=8, seed=3, **kw),
    lambda **kw: pipeline.pxk_batches(FACES, p=4, k=2, seed=3, **kw),
  ],
)
def test_process_shards_reassemble_the_single_process_batch(make):
  single = _take(make(), 2)
  shards = [_take(make(process_index=i, process_count=2), 2) for i in range(2)]
  for step in range(2):
    for key in single[step]:
      joined = np.concatenate([shards[i][step][key] for i in range(2)])
      np.testing.assert_array_equal(joined, single[step][key])
  with pytest.raises(ValueError, match="multiple of the process count"):
    make(process_index=0, process_count=3)


def test_split_records_only():
  records = np.flatnonzero(FACES.identities < 4)
  for batch in _take(pipeline.pair_batches(FACES, records, batch_size=16, seed=0), 2):
    assert batch["label"].sum() > 0
  ids = np.concatenate(
    [b["identity"] for b in _take(pipeline.pxk_batches(FACES, records, p=2, k=2), 5)]
  )
  assert ids.max() < 4
  with pytest.raises(ValueError, match="only 4 exist"):
    pipeline.pxk_batches(FACES, records, p=5, k=2)


def test_two_tower_image_text_and_triplet_batches():
  fp = face_fingerprint.FaceFingerprintSource(6, 2, image_size=16, seed=0)
  (b,) = _take(pipeline.two_tower_batches(fp, batch_size=4), 1)
  assert set(b) == {"image_a", "image_b", "identity"}
  assert b["image_a"].shape == (4, 16, 16, 3) and b["image_b"].shape == (4, 16, 16, 1)
  text = digits_text.DigitsTextSource(digits_text.builtin_digits(), seed=0)
  (b,) = _take(pipeline.image_text_batches(text, batch_size=8, seed=0), 1)
  assert set(b) == {"image", "text_ids", "text_mask", "identity"}
  assert b["text_ids"].dtype == np.int32 and b["text_mask"].dtype == bool
  assert b["image"].shape == (8, 28, 28, 1)
  (b,) = _take(pipeline.triplet_batches(FACES, batch_size=4), 1)
  assert set(b) == {"anchor", "positive", "negative", "identity"}


def test_eval_iterators_are_ordered_and_complete():
  batches = list(pipeline.eval_batches(FACES, np.arange(10), batch_size=4))
  assert [len(b["index"]) for b in batches] == [4, 4, 2]
  np.testing.assert_array_equal(batches[1]["image"][0], FACES[4]["image"])
  pairs = {"a": np.array([0, 1, 2]), "b": np.array([1, 5, 9]), "label": np.array([1, 0, 0])}
  (b,) = list(pipeline.eval_pair_batches(FACES, pairs, batch_size=8))
  np.testing.assert_array_equal(b["image_b"][2], FACES[9]["image"])


def _asymmetric_image(channels):
  image = np.zeros((16, 16, channels), np.float32)
  image[2:14, 2:6] = 1.0  # a bar on the left
  image[4:6, 2:12] = 1.0
  return image


@pytest.mark.parametrize("modality", ["fingerprint", "fingerprint_gamma", "digit"])
def test_no_horizontal_flips_for_digits_and_fingerprints(modality):
  image = _asymmetric_image(1)
  mirror = image[:, ::-1]
  for seed in range(40):
    out = pipeline.augment_image(image, np.random.default_rng(seed), modality)
    assert np.abs(out - image).mean() < np.abs(out - mirror).mean()


def test_faces_do_get_flipped_and_none_is_identity():
  image = _asymmetric_image(3)
  mirror = image[:, ::-1]
  outs = [pipeline.augment_image(image, np.random.default_rng(s), "face") for s in range(40)]
  assert any(np.abs(o - mirror).mean() < np.abs(o - image).mean() for o in outs)
  assert pipeline.augment_image(image, np.random.default_rng(0), "none") is image
  with pytest.raises(ValueError, match="unknown modality"):
    pipeline.augment_image(image, np.random.default_rng(0), "audio")


def test_face_gamma_flips_changes_gamma_and_leaves_face_draws_alone():
  image = np.clip(_asymmetric_image(3), 0.05, 1.0)
  outs = [pipeline.augment_image(image, np.random.default_rng(s), "face_gamma") for s in range(40)]
  assert all(o.dtype == np.float32 and 0.0 <= o.min() and o.max() <= 1.0 for o in outs)
  assert any(np.abs(o - image[:, ::-1]).mean() < np.abs(o - image).mean() for o in outs)
  # Gamma moves the mean intensity both ways (no brightness term in this family).
  means = np.array([o.mean() for o in outs])
  assert means.min() < image.mean() - 0.02 < image.mean() + 0.02 < means.max()
  again = pipeline.augment_image(image, np.random.default_rng(7), "face_gamma")
  np.testing.assert_array_equal(again, outs[7])


def test_per_channel_warps_equal_one_3d_warp_bit_for_bit():
  # augment_image warps each channel in 2-D; the 3-D transform it replaced, with the
  # channel axis left alone, gave the same floats (and took twice as long). Koch's
  # distortions (cval 0) always warped per channel.
  rng = np.random.default_rng(0)
  for _ in range(50):
    image = rng.uniform(size=(int(rng.integers(20, 50)), int(rng.integers(20, 50)), 3))
    image = image.astype(np.float32)
    angle, scale = rng.uniform(-0.4, 0.4), np.exp(rng.uniform(-0.2, 0.2))
    c, s = np.cos(angle) / scale, np.sin(angle) / scale
    matrix = np.array([[c, -s], [s, c]]) @ np.diag([1.0, rng.choice([-1.0, 1.0])])
    offset = rng.uniform(-5, 5, 2)
    full = np.eye(3)
    full[:2, :2] = matrix
    ref = scipy.ndimage.affine_transform(
      image, full, offset=np.append(offset, 0.0), order=1, mode="nearest"
    )
    per_channel = pipeline.warp_channels(image, matrix, offset, mode="nearest")
    np.testing.assert_array_equal(per_channel, ref)


def test_batch_shifts_equal_scipys_warps_bit_for_bit_and_other_warps_to_rounding(monkeypatch):
  # warp_batch redoes scipy's order-1 "nearest" affine_transform arithmetic for a whole
  # batch: pure shifts (augment_batch's use) bit for bit, across chunks and coordinates
  # outside the image; rotations, flips and scales to float32 rounding.
  monkeypatch.setattr(pipeline, "_WARP_CHUNK", 3)
  rng = np.random.default_rng(1)
  for h, w, c in ((20, 27, 3), (33, 33, 1), (8, 40, 2)):
    images = rng.uniform(size=(7, h, w, c)).astype(np.float32)
    offsets = rng.uniform(-8, 8, (7, 2))
    got = pipeline.warp_batch(images, np.tile(np.eye(2), (7, 1, 1)), offsets)
    for i in range(7):
      ref = pipeline.warp_channels(images[i], np.eye(2), offsets[i], mode="nearest")
      np.testing.assert_array_equal(got[i].view(np.uint32), ref.view(np.uint32))
    angle, scale = rng.uniform(-0.5, 0.5, 7), np.exp(rng.uniform(-0.3, 0.3, 7))
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)
    matrices[::2] = matrices[::2] @ np.diag([1.0, -1.0])
    got = pipeline.warp_batch(images, matrices, offsets)
    for i in range(7):
      ref = pipeline.warp_channels(images[i], matrices[i], offsets[i], mode="nearest")
      np.testing.assert_allclose(got[i], ref, rtol=0, atol=1e-7)


def _augment_reference(image, rng, modality):
  """augment_image as it was, image by image with scipy's warp (the batch path's spec)."""
  max_rot, max_shift, max_scale, flips, brightness, contrast, gamma = pipeline._AUGMENT[modality]
  h, w = image.shape[:2]
  angle = rng.uniform(-max_rot, max_rot)
  scale = np.exp(rng.uniform(-max_scale, max_scale))
  shift = rng.uniform(-max_shift, max_shift, size=2) * np.array([h, w])
  flip = flips and rng.uniform() < 0.5
  if angle or scale != 1.0 or shift.any() or flip:
    c, s = np.cos(angle) / scale, np.sin(angle) / scale
    matrix = np.array([[c, -s], [s, c]])
    if flip:
      matrix = matrix @ np.diag([1.0, -1.0])
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    image = pipeline.warp_channels(image, matrix, centre - matrix @ (centre + shift), "nearest")
  if brightness or contrast:
    mean = image.mean()
    gain = np.exp(rng.uniform(-contrast, contrast))
    image = (image - mean) * gain + mean + rng.uniform(-brightness, brightness)
  if gamma:
    image = np.clip(image, 1e-4, 1.0) ** np.exp(rng.uniform(-gamma, gamma))
  return np.clip(image, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("modality", sorted(pipeline._AUGMENT))
def test_batch_augmentation_equals_image_by_image_bit_for_bit(modality):
  rng = np.random.default_rng(2)
  images = list(rng.uniform(size=(20, 24, 24, 3)).astype(np.float32))
  got = pipeline.augment_batch(images, [np.random.default_rng(s) for s in range(20)], modality)
  ref = [_augment_reference(x, np.random.default_rng(s), modality) for s, x in enumerate(images)]
  np.testing.assert_array_equal(got.view(np.uint32), np.stack(ref).view(np.uint32))
  one = pipeline.augment_image(images[5], np.random.default_rng(5), modality)
  np.testing.assert_array_equal(one, ref[5])


def test_fingerprint_source_works_in_worker_processes():
  from absl import flags

  if not flags.FLAGS.is_parsed():  # Grain workers read absl flags; absl.app parses them in runs
    flags.FLAGS.mark_as_parsed()
  src = fingerprints.SyntheticFingerprints(4, 2, image_size=16)
  ds = pipeline.image_batches(src, batch_size=4, seed=0, num_epochs=1)
  single = list(pipeline.make_iterator(ds))
  multi = list(pipeline.make_iterator(ds, num_workers=2))
  assert len(single) == len(multi) == 2
  assert all(_equal(a, b) for a, b in zip(single, multi, strict=True))


def test_local_contrast_removes_gain_and_offset_and_keeps_the_range():
  rng = np.random.default_rng(0)
  images = rng.random((3, 40, 32, 1)).astype(np.float32)
  out = preprocess.preprocess(images, "local_contrast")
  assert out.shape == images.shape and out.dtype == np.float32
  assert 0.0 <= out.min() and out.max() <= 1.0
  # A sensor's gain and offset do not survive the local normalisation.
  np.testing.assert_allclose(
    preprocess.preprocess(0.3 * images + 0.2, "local_contrast"), out, atol=0.03
  )
  flat = preprocess.local_contrast(np.full((1, 16, 16, 1), 0.7, np.float32))
  np.testing.assert_allclose(flat, 0.5, atol=1e-6)  # no contrast: mid-grey
  assert preprocess.preprocess(images, "none") is images
  with pytest.raises(ValueError, match="data.preprocess"):
    preprocess.preprocess(images, "clahe")
  with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
    preprocess.local_contrast(images[0])


def test_rotation_classes_turn_each_class_into_new_ones():
  image = np.zeros((1, 3, 3, 1), np.float32)
  image[0, 0, 2, 0] = 1.0  # ink in the top-right corner
  images, labels, rows = pipeline.rotation_classes(np.repeat(image, 2, 0), np.array([0, 1]), 4)
  assert images.shape == (8, 3, 3, 1)
  np.testing.assert_array_equal(labels, [0, 4, 1, 5, 2, 6, 3, 7])
  np.testing.assert_array_equal(rows, [0, 1] * 4)
  corners = [tuple(np.argwhere(images[i, ..., 0])[0]) for i in (0, 2, 4, 6)]
  assert corners == [(0, 2), (0, 0), (2, 0), (2, 2)]  # counter-clockwise quarter turns
  same, same_labels, _ = pipeline.rotation_classes(images[:2], labels[:2], 1)
  np.testing.assert_array_equal(same, images[:2])
  np.testing.assert_array_equal(same_labels, labels[:2])
  mirrored, mirrored_labels, rows = pipeline.rotation_classes(image, np.array([3]), 2, True)
  np.testing.assert_array_equal(mirrored_labels, [12, 13, 14, 15])
  np.testing.assert_array_equal(rows, [0, 0, 0, 0])
  corners = [tuple(np.argwhere(mirrored[i, ..., 0])[0]) for i in range(4)]
  assert corners == [(0, 2), (2, 0), (0, 0), (2, 2)]  # 0, 180 degrees, then their mirrors
  # The lazy source: the same records, labels and rows, over a subset of the images.
  stack = np.random.default_rng(0).random((6, 4, 4, 2)).astype(np.float32)
  records = np.array([4, 1, 5])
  for num, mirror in ((1, False), (2, True), (4, False), (4, True)):
    want, want_labels, want_rows = pipeline.rotation_classes(
      stack[records], records + 10, num, mirror
    )
    src = pipeline.RotationClassSource(stack, records + 10, num, mirror, records=records)
    assert len(src) == len(want)
    np.testing.assert_array_equal(src.identities, want_labels)
    np.testing.assert_array_equal(src.rows, records[want_rows])
    for i in range(len(src)):
      np.testing.assert_array_equal(src[i]["image"], want[i])
      assert src[i]["identity"] == want_labels[i]
  with pytest.raises(ValueError, match="one label per record"):
    pipeline.RotationClassSource(stack, np.arange(2), 1, records=records)
  with pytest.raises(ValueError, match="1, 2 or 4"):
    pipeline.rotation_classes(images, labels, 3)
  with pytest.raises(ValueError, match="square"):
    pipeline.rotation_classes(np.zeros((1, 2, 3, 1)), np.array([0]), 4)
