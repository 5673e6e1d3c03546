"""Grain input pipelines: shuffled, repeated, augmented, batched, per-process sharded.

Every training pipeline is a `grain.MapDataset` chain over cheap integer elements:

    range(n) -> shuffle(seed) -> repeat(num_epochs) -> (global position, element)
      -> batch(local batch) -> [process_index::process_count] -> map(load + augment)

and `make_iterator` turns it into a checkpointable iterator (prefetching in
threads, or in worker processes with `num_workers`). Loading runs after the shard,
so each process decodes only its own rows; the rows of global step s are the
positions s*B ... (s+1)*B - 1, split into contiguous blocks of B / process_count
per process, so the global batch is the same for any number of processes. The
augmentation of each row is drawn from (seed, global position), so a run is
reproducible from its seed, and a restored iterator continues with exactly the
next batch.

Batches (numpy; images float32 NHWC in [0, 1]):
- `image_batches`: {"image", "identity"}.
- `pxk_batches`: {"image", "identity"}, P identities x K images per global batch.
- `pair_batches`: {"image_a", "image_b", "label"} (int32, 1 = same identity).
- `triplet_batches`: {"anchor", "positive", "negative", "identity"} (anchor identity).
- `two_tower_batches`: {"image_a", "image_b", "identity"} for paired sources.
- `image_text_batches`: {"image", "text_ids", "text_mask", "identity"}.
- `eval_batches`, `eval_pair_batches`: plain ordered iterators without
  augmentation, for embedding a split or scoring a fixed pair list.

Augmentation per modality (`augment_image`): faces get small affine jitter,
horizontal flips and brightness/contrast; "face_gamma" (the real-face recipe,
`face_verify:folders`) gets larger affine jitter (10 degrees, 10% scale, 8% shift),
flips and a random gamma (x ** exp(U(-0.3, 0.3))) for illumination instead of
brightness/contrast; fingerprints get rotation/translation
and contrast but never flips (a mirrored print is another finger), "fingerprint_gamma"
(the FVC2002 recipe, `face_verify:fvc2002`) larger ones (20 degrees, 10% scale and
shift) and the random gamma; digits get
small shifts and rotations, no flips and no colour change; "generic" gets
shifts and brightness/contrast; "character" (handwritten strokes, ink 1 on paper 0)
gets Koch et al.'s (2015) affine distortions (`koch_affine`): rotation, shear, scale and
translation, each drawn with probability 1/2, paper filled in at the edges;
"character_shift" adds a uniform translation of up to 10% of the side to those (Koch's
2 pixels at 105 are half a pixel at 28); "character_elastic" then adds Simard et al.'s
(2003) elastic distortion (`elastic_distortion`), a smooth random warp like the
difference between two people's strokes;
"none" leaves images as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grain
import numpy as np
import scipy.ndimage

from jaxsim.data.sampling import IdentityIndex

MODALITIES = (
  "face",
  "face_gamma",
  "fingerprint",
  "fingerprint_gamma",
  "digit",
  "generic",
  "character",
  "character_shift",
  "character_elastic",
  "none",
)

# modality: (max rotation rad, max shift as a fraction of the side, max log-scale,
#            horizontal flips, brightness, contrast, max |log gamma|)
_AUGMENT = {
  "face": (0.14, 0.06, 0.06, True, 0.1, 0.2, 0.0),
  "face_gamma": (np.deg2rad(10.0), 0.08, 0.1, True, 0.0, 0.0, 0.3),
  "fingerprint": (0.17, 0.06, 0.04, False, 0.08, 0.25, 0.0),
  "fingerprint_gamma": (np.deg2rad(20.0), 0.1, 0.1, False, 0.0, 0.0, 0.3),
  "digit": (0.14, 0.07, 0.06, False, 0.0, 0.0, 0.0),
  "generic": (0.0, 0.06, 0.0, False, 0.1, 0.2, 0.0),
}
_AUG_SALT, _PAIR_SALT, _TRIPLET_SALT, _PXK_SALT = 0xA06, 0xBA1, 0x7B1, 0x9C1


# Koch, Zemel and Salakhutdinov (2015), section 4.2: theta in [-10, 10] degrees, shear in
# [-0.3, 0.3], scale in [0.8, 1.2], translation in [-2, 2] pixels of a 105-pixel image.
KOCH_AFFINE = {"rotation_deg": 10.0, "shear": 0.3, "scale": 0.2, "translation_px105": 2.0}


def koch_affine(
  image: np.ndarray, rng: np.random.Generator, strength: float = 1.0, max_shift: float = 0.0
) -> np.ndarray:
  """Koch et al.'s affine distortion of one character image [H, W, C] (ink 1, paper 0).

  T = rotation . shear . scale with a translation, each component drawn with
  probability 1/2 (as in the paper) from the `KOCH_AFFINE` ranges times `strength`;
  the translation scales with the image side (2 pixels at 105). `max_shift` adds a
  uniform translation of up to that fraction of the side. Bilinear resampling, paper (0)
  outside the image.
  """
  k, h = KOCH_AFFINE, image.shape[0]
  use = rng.uniform(size=4) < 0.5
  theta = np.deg2rad(rng.uniform(-1, 1) * k["rotation_deg"] * strength) if use[0] else 0.0
  shear = rng.uniform(-1, 1, 2) * k["shear"] * strength if use[1] else np.zeros(2)
  scale = 1.0 + rng.uniform(-1, 1, 2) * k["scale"] * strength if use[2] else np.ones(2)
  shift = (
    rng.uniform(-1, 1, 2) * k["translation_px105"] * strength * h / 105 if use[3] else np.zeros(2)
  )
  if max_shift:
    shift = shift + rng.uniform(-1, 1, 2) * max_shift * h
  rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  forward = rotation @ np.array([[1.0, shear[0]], [shear[1], 1.0]]) @ np.diag(scale)
  inverse = np.linalg.inv(forward)
  centre = (np.array(image.shape[:2], np.float64) - 1) / 2
  offset = centre - inverse @ (centre + shift)
  return np.clip(warp_channels(image, inverse, offset), 0.0, 1.0).astype(np.float32)


def warp_channels(
  image: np.ndarray, matrix: np.ndarray, offset: np.ndarray, mode: str = "constant"
) -> np.ndarray:
  """Bilinear affine warp of each channel of `image` [H, W, C]: output pixel p reads
  the input at matrix @ p + offset (`scipy.ndimage.affine_transform`, order 1; "constant"
  fills with 0 outside). One 2-D transform per channel gives the same floats as one 3-D
  transform that leaves the channel axis alone (tested) at half the cost: 4 taps per
  pixel instead of 8."""
  return np.stack(
    [
      scipy.ndimage.affine_transform(image[..., c], matrix, offset=offset, order=1, mode=mode)
      for c in range(image.shape[-1])
    ],
    axis=-1,
  )


def rotation_classes(
  images: np.ndarray, labels: np.ndarray, num: int, mirror: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each class rotated by multiples of 90 degrees (and mirrored), each variant a class.

  The standard class augmentation of Omniglot training (Santoro et al. 2016; Snell et
  al. 2017): a character turned by 90 degrees is another character. `num` in {1, 2, 4}
  turns (block r turned r * 4 / num quarter turns counter-clockwise; 4 needs square
  images); `mirror` adds the left-right mirror image of every block after them.
  Returns `(images, labels, index)`: the M = num (x 2) blocks of all `images`
  [N, H, W, C], labels `labels * M + block` and `index` [N * M], the source row of each
  output row. `RotationClassSource` gives the same records without copying the images.
  """
  src = RotationClassSource(images, labels, num, mirror)
  return np.stack([src[i]["image"] for i in range(len(src))]), src.identities, src.rows


class RotationClassSource:
  """`rotation_classes` as a source: the images are turned when a record is read.

  Record j of block b (of M) is `images[records[j]]` turned and mirrored as block b of
  `rotation_classes`, with identity `labels[j] * M + b` and the same order. Nothing is
  copied: the classes of Omniglot's default training set (7,224 images at 84x84, four
  turns) took 0.8 GB and seconds of copying when built as arrays.

  Args:
    images: [N, H, W, C] images (kept, not copied).
    labels: class of each of `records` (of each image when `records` is None).
    num, mirror: as `rotation_classes`.
    records: the rows of `images` to use (default: all, in order).
    modality: the augmentation the pipeline applies (`augment_image`).
  """

  def __init__(
    self, images, labels, num: int, mirror: bool = False, *, records=None, modality: str = "generic"
  ):
    images, labels = np.asarray(images), np.asarray(labels)
    if num not in (1, 2, 4):
      raise ValueError(f"rotation classes must be 1, 2 or 4 quarter-turn steps, got {num}")
    if num == 4 and images.shape[1] != images.shape[2]:
      raise ValueError(f"quarter turns need square images, got {images.shape[1:3]}")
    records = np.arange(len(images)) if records is None else np.asarray(records, np.int64)
    if labels.shape != records.shape:
      raise ValueError(f"one label per record: {labels.shape} labels, {records.shape} records")
    self._blocks = [(t, False) for t in range(0, 4, 4 // num)]
    if mirror:
      self._blocks += [(t, True) for t, _ in self._blocks]
    m = len(self._blocks)
    self.images, self.modality, self._per_block = images, modality, len(records)
    self.rows = np.tile(records, m)
    self.identities = np.concatenate([labels * m + b for b in range(m)]).astype(np.int64)

  def __len__(self) -> int:
    return len(self.rows)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    turns, mirrored = self._blocks[index // self._per_block]
    image = np.rot90(self.images[self.rows[index]], turns)  # axes (H, W) of [H, W, C]
    if mirrored:
      image = image[:, ::-1]
    return {"image": np.ascontiguousarray(image), "identity": np.int32(self.identities[index])}


# Simard, Steinkraus and Platt (2003), on 28x28 digits: a displacement field of uniform
# noise in [-1, 1] smoothed by a Gaussian of sigma 4 px, scaled by alpha = 34 px (about
# 0.7 px RMS displacement); both scale with the image side.
ELASTIC = {"alpha_px28": 34.0, "sigma_px28": 4.0}


def elastic_distortion(
  image: np.ndarray, rng: np.random.Generator, strength: float = 1.0
) -> np.ndarray:
  """Simard et al.'s elastic distortion of one image [H, W, C] (`ELASTIC` x `strength`):
  every pixel moves by a smooth random field; bilinear, paper (0) outside the image."""
  h, w = image.shape[:2]
  alpha = ELASTIC["alpha_px28"] * strength * h / 28
  sigma = ELASTIC["sigma_px28"] * h / 28
  field = [
    alpha * scipy.ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="constant")
    for _ in range(2)
  ]
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  coords = np.stack([rows + field[0], cols + field[1]])
  out = np.stack(
    [
      scipy.ndimage.map_coordinates(image[..., c], coords, order=1, cval=0.0)
      for c in range(image.shape[-1])
    ],
    axis=-1,
  )
  return np.clip(out, 0.0, 1.0).astype(np.float32)


def augment_image(image: np.ndarray, rng: np.random.Generator, modality: str) -> np.ndarray:
  """Random augmentation of one image [H, W, C] for `modality` (see module docstring)."""
  if modality not in MODALITIES:
    raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
  if modality == "none":
    return image
  if modality in ("character", "character_shift"):
    return koch_affine(image, rng, max_shift=0.1 if modality == "character_shift" else 0.0)
  if modality == "character_elastic":
    return elastic_distortion(koch_affine(image, rng, max_shift=0.1), rng)
  h, w = image.shape[:2]
  matrix, offset, gain, bias, exponent = _augment_params(rng, modality, h, w)
  if matrix is not None:
    image = warp_channels(image, matrix, offset, mode="nearest")
  if gain is not None:
    mean = image.mean()
    image = (image - mean) * gain + mean + bias
  if exponent is not None:
    image = np.clip(image, 1e-4, 1.0) ** exponent
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def augment_batch(
  images: Sequence[np.ndarray], rngs: Sequence[np.random.Generator], modality: str
) -> np.ndarray:
  """`augment_image` of each image with its own generator, stacked [B, H, W, C].

  Modalities whose only warp is a shift ("generic") draw each image's parameters from its
  generator, shift the whole batch in one vectorised call (`warp_batch`) and apply
  contrast and brightness to the batch: the same floats as image by image (tested bit
  for bit), in 0.65x the time for 128 images of 32x32x3. The others, whose rotations
  `warp_batch` matches only to rounding, go image by image.
  """
  if modality not in MODALITIES:
    raise ValueError(f"unknown modality {modality!r}; choose one of {MODALITIES}")
  if len(images) != len(rngs):
    raise ValueError(f"one generator per image: {len(images)} images, {len(rngs)} generators")
  pairs = zip(images, rngs, strict=True)
  if modality not in _SHIFT_ONLY or len({(np.shape(x), np.asarray(x).dtype) for x in images}) > 1:
    return np.stack([augment_image(x, r, modality) for x, r in pairs])
  batch = np.stack(images)
  params = [_augment_params(r, modality, *batch.shape[1:3]) for r in rngs]
  shifted = [i for i, p in enumerate(params) if p[0] is not None]  # all matrices identity
  if shifted:
    matrices = np.stack([params[i][0] for i in shifted])
    batch[shifted] = warp_batch(batch[shifted], matrices, np.stack([params[i][1] for i in shifted]))
  image: np.ndarray = batch
  per_image = (batch.shape[0],) + (1,) * (batch.ndim - 1)
  if params[0][2] is not None:  # contrast and brightness (the same for every image)
    mean = batch.reshape(batch.shape[0], -1).mean(axis=1).reshape(per_image)
    gain = np.array([p[2] for p in params], np.float64).reshape(per_image)
    bias = np.array([p[3] for p in params], np.float64).reshape(per_image)
    image = (batch - mean) * gain + mean + bias
  if params[0][4] is not None:
    exponent = np.array([p[4] for p in params], np.float64).reshape(per_image)
    image = np.clip(image, 1e-4, 1.0) ** exponent
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def _augment_params(rng: np.random.Generator, modality: str, h: int, w: int) -> tuple:
  """One image's draws for an `_AUGMENT` modality, in order: (warp matrix or None, warp
  offset, contrast gain, brightness bias, gamma exponent; None where not drawn)."""
  max_rot, max_shift, max_scale, flips, brightness, contrast, gamma = _AUGMENT[modality]
  angle = rng.uniform(-max_rot, max_rot)
  scale = np.exp(rng.uniform(-max_scale, max_scale))
  shift = rng.uniform(-max_shift, max_shift, size=2) * np.array([h, w])
  flip = flips and rng.uniform() < 0.5
  matrix = offset = None
  if angle or scale != 1.0 or shift.any() or flip:
    c, s = np.cos(angle) / scale, np.sin(angle) / scale
    matrix = np.array([[c, -s], [s, c]])
    if flip:
      matrix = matrix @ np.diag([1.0, -1.0])
    centre = np.array([(h - 1) / 2, (w - 1) / 2])
    offset = centre - matrix @ (centre + shift)
  gain = bias = exponent = None
  if brightness or contrast:
    gain = np.exp(rng.uniform(-contrast, contrast))
    bias = rng.uniform(-brightness, brightness)
  if gamma:
    exponent = np.exp(rng.uniform(-gamma, gamma))
  return matrix, offset, gain, bias, exponent


# `_AUGMENT` modalities whose warp is a pure shift (identity matrix): `augment_batch`
# shifts them in one `warp_batch` call.
_SHIFT_ONLY = tuple(k for k, v in _AUGMENT.items() if v[0] == 0 and v[2] == 0 and not v[3])
_WARP_CHUNK = 8  # images per step of `warp_batch` (8 of 32x32x3: 1.7x faster than 64)


def warp_batch(images: np.ndarray, matrices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
  """Bilinear affine warps of a batch [B, H, W, C], edge pixels repeated outside: output
  pixel p of image i reads image i at matrices[i] @ p + offsets[i].

  Follows `warp_channels(images[i], matrices[i], offsets[i], mode="nearest")` (scipy's
  `affine_transform`, order 1) in its arithmetic: coordinates in float64 clamped to the
  image, weights 1 - f and 1 - (1 - f), the four taps' (value * row weight) * column
  weight summed in scipy's order, then cast to the input's dtype. For pure shifts
  (identity matrices) every coordinate is exact up to the one rounding of its offset,
  and the floats are scipy's bit for bit (tested on 28,800 images). With rotations or
  scales scipy's coordinates differ from these in the last bits of float64, and about 1
  pixel in 10^7 rounds to a neighbouring float32 (2 in 24,000 64x64x3 face images), so
  `augment_batch` uses it for shifts only.
  """
  images = np.asarray(images)
  if len(images) > _WARP_CHUNK:  # chunks whose temporaries stay in cache
    chunks = (slice(i, i + _WARP_CHUNK) for i in range(0, len(images), _WARP_CHUNK))
    return np.concatenate([warp_batch(images[c], matrices[c], offsets[c]) for c in chunks])
  b, h, w, c = images.shape
  # Channel-major [C, B * H * W] in float64 (scipy reads every tap as a double), so each
  # product below runs along a long contiguous axis.
  planes = np.moveaxis(images, -1, 0).reshape(c, -1).astype(np.float64)
  grid = (np.arange(h, dtype=np.float64)[:, None], np.arange(w, dtype=np.float64)[None, :])
  taps, weights = [], []
  for axis, size in enumerate((h, w)):
    m = matrices[:, axis, :, None, None]
    coord = grid[0] * m[:, 0] + grid[1] * m[:, 1] + offsets[:, axis, None, None]
    coord = np.clip(coord, 0.0, size - 1.0).reshape(-1)
    low = np.floor(coord)
    w0 = 1.0 - (coord - low)
    weights.append((w0, 1.0 - w0))
    i0 = low.astype(np.intp)
    taps.append((i0, np.minimum(i0 + 1, size - 1)))
  first_row = np.repeat(np.arange(b) * h, h * w)  # of each output pixel's image
  total = None
  for r in range(2):
    for col in range(2):
      index = (first_row + taps[0][r]) * w + taps[1][col]
      term = np.take(planes, index, axis=1) * weights[0][r] * weights[1][col]
      total = 0.0 + term if total is None else total + term  # scipy's t = 0.0; t += ...
  return np.moveaxis(total.reshape(c, b, h, w), 0, -1).astype(images.dtype)


def _default_modality(source, modality: str | None) -> str:
  return modality or getattr(source, "modality", "generic")


def _rng(seed: int, salt: int, *position: int) -> np.random.Generator:
  return np.random.default_rng([seed, salt, *[int(p) for p in position]])


def _local_batch_size(batch_size: int, process_index: int, process_count: int) -> int:
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(
      f"process_index must be in [0, process_count), got {process_index} of {process_count}"
    )
  if batch_size < 1 or batch_size % process_count:
    raise ValueError(
      f"the global batch size {batch_size} must be a positive multiple of the process "
      f"count {process_count}"
    )
  return batch_size // process_count


def _records(source, records) -> np.ndarray:
  records = np.arange(len(source)) if records is None else np.asarray(records, np.int64)
  if records.ndim != 1 or records.size == 0:
    raise ValueError("records must be a non-empty 1-D array of record indices")
  return records


def _element_dataset(
  elements: np.ndarray,
  *,
  batch_size: int,
  seed: int,
  shuffle: bool = True,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  drop_remainder: bool = True,
) -> grain.MapDataset:
  """Batches of (global positions [b], elements [b]) for this process.

  The options every record-batch builder takes (`image_batches`, `image_text_batches`,
  `two_tower_batches` pass them through): shuffle (a new order every epoch), num_epochs
  (None = repeat forever), process_index and process_count (this process's shard; pass
  jax.process_index() and jax.process_count(): data/ does not call JAX) and
  drop_remainder (drop a final incomplete batch).
  """
  local = _local_batch_size(batch_size, process_index, process_count)
  ds = grain.MapDataset.source(elements)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  ds = ds.repeat(num_epochs)
  ds = ds.map_with_index(lambda position, element: (np.int64(position), np.int64(element)))
  ds = ds.batch(local, drop_remainder=drop_remainder)
  return ds[process_index::process_count]


class _LoadImages:
  """Loads and augments the records of one batch of (positions, records)."""

  def __init__(self, source, seed: int, modality: str, augment: bool, text: bool = False):
    self.source, self.seed, self.modality, self.augment, self.text = (
      source,
      seed,
      modality,
      augment,
      text,
    )

  def __call__(self, batch) -> dict[str, np.ndarray]:
    positions, records = batch
    out: dict[str, list] = {"image": [], "identity": []}
    if self.text:
      out["text_ids"], out["text_mask"] = [], []
    for record_index in records:
      record = self.source[int(record_index)]
      out["image"].append(record["image"])
      out["identity"].append(record["identity"])
      if self.text:
        out["text_ids"].append(record["text_ids"])
        out["text_mask"].append(record["text_mask"])
    if self.augment:  # augment_batch returns the stacked batch
      rngs = [_rng(self.seed, _AUG_SALT, position) for position in positions]
      image = augment_batch(out.pop("image"), rngs, self.modality)
    else:
      image = np.stack(out.pop("image"))
    batch_out = {"image": image, **{k: np.stack(v) for k, v in out.items()}}
    batch_out["identity"] = batch_out["identity"].astype(np.int32)
    return batch_out


class _LoadTwoTower:
  def __init__(self, source, seed: int, modalities, augment: bool):
    self.source, self.seed, self.modalities, self.augment = source, seed, modalities, augment

  def __call__(self, batch) -> dict[str, np.ndarray]:
    positions, records = batch
    rows = [self.source[int(r)] for r in records]
    out = {}
    for side, key in enumerate(("image_a", "image_b")):
      images = [row[key] for row in rows]
      if self.augment:  # augment_batch returns the stacked batch
        rngs = [_rng(self.seed, _AUG_SALT, position, side) for position in positions]
        out[key] = augment_batch(images, rngs, self.modalities[side])
      else:
        out[key] = np.stack(images)
    out["identity"] = np.array([row["identity"] for row in rows], np.int32)
    return out


class _LoadPairs:
  def __init__(self, source, index, seed, modality, augment, positive_fraction):
    self.source, self.index, self.seed = source, index, seed
    self.modality, self.augment, self.positive_fraction = modality, augment, positive_fraction

  def _images(self, record_indices, positions, side) -> np.ndarray:
    """The records' images, each augmented with the generator of (position, side)."""
    images = [self.source[int(r)]["image"] for r in record_indices]
    if not self.augment:
      return np.stack(images)
    rngs = [_rng(self.seed, _AUG_SALT, position, side) for position in positions]
    return augment_batch(images, rngs, self.modality)

  def __call__(self, batch) -> dict[str, np.ndarray]:
    positions, _ = batch
    a, b, labels = [], [], []
    for position in positions:
      rng = _rng(self.seed, _PAIR_SALT, position)
      positive = rng.uniform() < self.positive_fraction
      pick = self.index.positive_pairs if positive else self.index.negative_pairs
      ra, rb = pick(1, rng)
      a.append(ra[0])
      b.append(rb[0])
      labels.append(int(positive))
    return {
      "image_a": self._images(a, positions, 0),
      "image_b": self._images(b, positions, 1),
      "label": np.array(labels, np.int32),
    }


class _LoadTriplets(_LoadPairs):
  def __call__(self, batch) -> dict[str, np.ndarray]:
    positions, _ = batch
    keys = ("anchor", "positive", "negative")
    records: dict[str, list] = {key: [] for key in keys}
    for position in positions:
      t = self.index.triplets(1, _rng(self.seed, _TRIPLET_SALT, position))
      for key in keys:
        records[key].append(t[key][0])
    out = {key: self._images(records[key], positions, side) for side, key in enumerate(keys)}
    ids = [self.source[int(r)]["identity"] for r in records["anchor"]]
    out["identity"] = np.array(ids).astype(np.int32)
    return out


class _LoadPxK:
  def __init__(self, source, index, seed, modality, augment, p, k, rows: slice, groups=None):
    self.source, self.index, self.seed = source, index, seed
    self.modality, self.augment, self.p, self.k, self.rows = modality, augment, p, k, rows
    self.groups = groups

  def __call__(self, step) -> dict[str, np.ndarray]:
    records = self.index.pxk(self.p, self.k, _rng(self.seed, _PXK_SALT, step), self.groups)
    rows = range(self.rows.start, self.rows.stop)
    chosen = [self.source[int(records[row])] for row in rows]
    images = [record["image"] for record in chosen]
    if self.augment:  # augment_batch returns the stacked batch
      rngs = [_rng(self.seed, _AUG_SALT, step, row) for row in rows]
      batch = augment_batch(images, rngs, self.modality)
    else:
      batch = np.stack(images)
    return {"image": batch, "identity": np.array([r["identity"] for r in chosen], np.int32)}


def image_batches(
  source,
  records=None,
  *,
  batch_size: int,
  seed: int = 0,
  modality: str | None = None,
  augment: bool = True,
  **options,
) -> grain.MapDataset:
  """Shuffled batches {"image" [b, H, W, C], "identity" [b]} of `records` of `source`.

  Args:
    source: random-access source of {"image", "identity"} records.
    records: record indices of the split to read (default all).
    batch_size: the global batch size; each process gets batch_size / process_count rows.
    seed: shuffle and augmentation seed.
    modality: augmentation family; default `source.modality`.
    augment: apply `augment_image`.
    **options: shuffle, num_epochs, process_index, process_count, drop_remainder (see
      `_element_dataset`).
  """
  ds = _element_dataset(_records(source, records), batch_size=batch_size, seed=seed, **options)
  return ds.map(_LoadImages(source, seed, _default_modality(source, modality), augment))


def image_text_batches(
  source, records=None, *, batch_size: int, seed: int = 0, augment: bool = True, **options
) -> grain.MapDataset:
  """Batches {"image", "text_ids" int32 [b, L], "text_mask" bool [b, L], "identity"}.

  `source` is a `DigitsTextSource`; other arguments as in `image_batches`.
  """
  ds = _element_dataset(_records(source, records), batch_size=batch_size, seed=seed, **options)
  modality = getattr(source, "modality", "digit")
  return ds.map(_LoadImages(source, seed, modality, augment, text=True))


def two_tower_batches(
  source,
  records=None,
  *,
  batch_size: int,
  seed: int = 0,
  modalities: tuple[str, str] | None = None,
  augment: bool = True,
  **options,
) -> grain.MapDataset:
  """Batches {"image_a", "image_b", "identity"} from a paired source (row i: same subject).

  Note that a batch may hold several records of one subject; in-batch contrastive
  losses must then treat rows with equal `identity` as positives. Options as in
  `image_batches`.
  """
  ds = _element_dataset(_records(source, records), batch_size=batch_size, seed=seed, **options)
  modalities = modalities or getattr(source, "modalities", ("generic", "generic"))
  return ds.map(_LoadTwoTower(source, seed, modalities, augment))


def _sampling_dataset(
  records, batch_size, seed, num_epochs, process_index, process_count
) -> grain.MapDataset:
  # One "epoch" draws as many pairs as the split has records.
  return _element_dataset(
    np.arange(len(records)),
    batch_size=batch_size,
    seed=seed,
    shuffle=False,
    num_epochs=num_epochs,
    process_index=process_index,
    process_count=process_count,
  )


def pair_batches(
  source,
  records=None,
  *,
  batch_size: int,
  seed: int = 0,
  positive_fraction: float = 0.5,
  modality: str | None = None,
  augment: bool = True,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> grain.MapDataset:
  """Freshly drawn pairs {"image_a", "image_b", "label"}; P(label = 1) = positive_fraction.

  Pair j of the run is drawn from (seed, j); a record is never paired with itself.
  """
  records = _records(source, records)
  if not 0.0 <= positive_fraction <= 1.0:
    raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction}")
  index = IdentityIndex(source.identities, records)
  ds = _sampling_dataset(records, batch_size, seed, num_epochs, process_index, process_count)
  return ds.map(
    _LoadPairs(source, index, seed, _default_modality(source, modality), augment, positive_fraction)
  )


def triplet_batches(
  source,
  records=None,
  *,
  batch_size: int,
  seed: int = 0,
  modality: str | None = None,
  augment: bool = True,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
) -> grain.MapDataset:
  """Explicit triplets {"anchor", "positive", "negative", "identity"} drawn from (seed, j)."""
  records = _records(source, records)
  index = IdentityIndex(source.identities, records)
  ds = _sampling_dataset(records, batch_size, seed, num_epochs, process_index, process_count)
  return ds.map(
    _LoadTriplets(source, index, seed, _default_modality(source, modality), augment, 0.0)
  )


def pxk_batches(
  source,
  records=None,
  *,
  p: int,
  k: int,
  seed: int = 0,
  modality: str | None = None,
  augment: bool = True,
  steps_per_epoch: int | None = None,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  groups: np.ndarray | None = None,
) -> grain.MapDataset:
  """PxK batches {"image" [p*k / process_count, ...], "identity"} for in-batch mining.

  Global batch s holds p distinct identities x k images, drawn from (seed, s) and
  grouped by identity; process i gets rows [i * p*k / n, (i + 1) * p*k / n).
  `steps_per_epoch` defaults to len(records) // (p * k). `groups` (one per record of
  the source) makes batches hard: as many identities as possible from one group
  (`IdentityIndex.pxk`).
  """
  records = _records(source, records)
  local = _local_batch_size(p * k, process_index, process_count)
  index = IdentityIndex(source.identities, records)
  index.pxk(p, k, np.random.default_rng(0), groups)  # fail now if a batch cannot be filled
  steps = steps_per_epoch or max(1, len(records) // (p * k))
  ds = grain.MapDataset.range(steps).repeat(num_epochs)
  ds = ds.map_with_index(lambda position, _: np.int64(position))
  rows = slice(process_index * local, (process_index + 1) * local)
  return ds.map(
    _LoadPxK(source, index, seed, _default_modality(source, modality), augment, p, k, rows, groups)
  )


def sampler_iterator(
  source,
  records: np.ndarray,
  sampler: Any,
  batch_size: int,
  seed: int,
  process_index: int = 0,
  process_count: int = 1,
  groups: np.ndarray | None = None,
):
  """A checkpointable iterator of pair batches or PxK batches of `records`.

  `sampler.kind` is "pairs" (balanced fresh pairs, `positive_fraction`; batches
  `{"image_a", "image_b", "label"}`) or "pxk" (`p` identities x `k` images, p * k equal
  to the batch size; batches `{"image", "identity"}`; with `sampler.within_groups`,
  hard batches from one of `groups`, see `pxk_batches`). `process_index` and
  `process_count` select this process's shard (pass jax.process_index() and
  jax.process_count()). "images" gives shuffled epochs of single images
  (`image_batches`; batches `{"image", "identity"}`), for proxy losses.
  """
  common = {"seed": seed, "process_index": process_index, "process_count": process_count}
  if sampler.kind == "pairs":
    ds = pair_batches(
      source,
      records,
      batch_size=batch_size,
      positive_fraction=sampler.positive_fraction,
      augment=sampler.augment,
      **common,
    )
    return make_iterator(ds)
  if sampler.kind == "pxk":
    if sampler.p * sampler.k != batch_size:
      raise ValueError(
        f"sampler p * k = {sampler.p} * {sampler.k} must equal train.batch_size = {batch_size}"
      )
    if sampler.get("within_groups") and groups is None:
      raise ValueError("sampler.within_groups=True needs the data's groups (e.g. alphabets)")
    ds = pxk_batches(
      source,
      records,
      p=sampler.p,
      k=sampler.k,
      augment=sampler.augment,
      groups=groups if sampler.get("within_groups") else None,
      **common,
    )
    return make_iterator(ds)
  if sampler.kind == "images":
    return make_iterator(
      image_batches(source, records, batch_size=batch_size, augment=sampler.augment, **common)
    )
  raise ValueError(f"sampler.kind must be 'pairs', 'pxk' or 'images', got {sampler.kind!r}")


def make_iterator(
  dataset: grain.MapDataset,
  *,
  num_threads: int = 2,
  prefetch_buffer_size: int = 4,
  num_workers: int = 0,
) -> grain.DatasetIterator:
  """A checkpointable iterator over `dataset`.

  `get_state()` / `set_state(state)` (or Grain's Orbax handlers,
  `grain.checkpoint.CheckpointSave(iterator)`) save and restore the position, so a
  resumed run continues with exactly the next batch. `num_workers > 0` loads in
  that many worker processes (useful when rendering synthetic data is the bottleneck).
  """
  ds = dataset.to_iter_dataset(
    grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size)
  )
  if num_workers > 0:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
  return iter(ds)


def eval_batches(
  source,
  records=None,
  *,
  batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """Ordered batches of `records` without augmentation; the last batch may be smaller.

  Yields dicts with the array keys of the source's records ({"image", "identity"},
  {"image_a", "image_b", "identity"}, or with "text_ids"/"text_mask"), plus
  "index" (the record indices). With several processes, process i reads every
  process_count-th batch.
  """
  records = _records(source, records)
  for n, start in enumerate(range(0, len(records), batch_size)):
    if n % process_count != process_index:
      continue
    chunk = records[start : start + batch_size]
    rows = [source[int(r)] for r in chunk]
    batch = {
      key: np.stack([row[key] for row in rows])
      for key, value in rows[0].items()
      if isinstance(value, np.ndarray | np.generic)
    }
    if "identity" in batch:
      batch["identity"] = batch["identity"].astype(np.int32)
    batch["index"] = chunk
    yield batch


def eval_pair_batches(
  source, pairs: Mapping[str, np.ndarray], *, batch_size: int
) -> Iterator[dict[str, np.ndarray]]:
  """Batches {"image_a", "image_b", "label"} of a fixed pair list {"a", "b", "label"}."""
  a, b, label = (np.asarray(pairs[k]) for k in ("a", "b", "label"))
  for start in range(0, len(a), batch_size):
    sl = slice(start, start + batch_size)
    yield {
      "image_a": np.stack([source[int(i)]["image"] for i in a[sl]]),
      "image_b": np.stack([source[int(i)]["image"] for i in b[sl]]),
      "label": label[sl].astype(np.int32),
    }


class CrossModalPairs:
  """Cross-modal pairs `{"image_a", "image_b", "label"}` from two-tower batches.

  The first `round(B * positive_fraction)` rows keep their own fingerprint (genuine
  pairs); the other rows take the fingerprint of the next row among them (impostor
  pairs, unless that row happens to hold the same subject: the label says which).
  This is the pair protocol of source project 1. The wrapped Grain iterator's state is
  passed through, so `fit` checkpoints and resumes it exactly.
  """

  def __init__(self, iterator, positive_fraction: float = 0.5):
    self._it = iterator
    self.positive_fraction = positive_fraction

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._it)
    ids, b = batch["identity"], batch["image_b"].copy()
    p = int(round(len(ids) * self.positive_fraction))
    perm = np.arange(len(ids))
    perm[p:] = np.roll(perm[p:], 1)
    b = b[perm]
    label = (ids == ids[perm]).astype(np.int32)
    return {"image_a": batch["image_a"], "image_b": b, "label": label}

  def get_state(self):
    return self._it.get_state()

  def set_state(self, state) -> None:
    self._it.set_state(state)
