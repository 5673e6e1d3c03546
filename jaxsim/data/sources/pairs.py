"""Left/right pair sources for similarity search.

`SyntheticLookalikePairs`: pair i has a latent structure (a few Gaussian blobs with
positions, sizes and signed weights, plus an oriented stripe texture). The left
image renders it as a smooth colour-mapped field; the right image renders the
same structure differently: after its own rotation, scale and shift, as
quantised contour bands in another palette, with a weaker distractor structure
added (its strength is the `difficulty` knob). Each left image has exactly one
matching right image, so random guessing gives Recall@1 = 1/N.

`totally_looks_like_source(root)`: the Totally Looks Like layout, `root/left/<stem>`
and `root/right/<stem>` with matching file stems.

Records of both: `{"image_a": left float32 [H, W, 3], "image_b": right float32
[H, W, 3], "identity": int32 pair index}` (the cross-modal two-tower form).
"""

from __future__ import annotations

import pathlib

import numpy as np

from jaxsim.data.sources import folders

_NUM_BLOBS = 6
_PALETTE_A = np.array([[0.1, 0.1, 0.4], [0.2, 0.6, 0.9], [0.95, 0.95, 0.6], [0.9, 0.3, 0.1]])
_PALETTE_B = np.array([[0.15, 0.35, 0.1], [0.9, 0.85, 0.7], [0.5, 0.2, 0.5], [0.1, 0.1, 0.1]])


def _structure(rng: np.random.Generator) -> dict[str, np.ndarray]:
  return {
    "centres": rng.uniform(-0.7, 0.7, size=(_NUM_BLOBS, 2)),
    "widths": rng.uniform(0.12, 0.4, size=_NUM_BLOBS),
    "weights": rng.choice([-1.0, 1.0], size=_NUM_BLOBS) * rng.uniform(0.5, 1.0, _NUM_BLOBS),
    "stripe": np.array([rng.uniform(0, np.pi), rng.uniform(3.0, 9.0), rng.uniform(0.0, 0.4)]),
  }


def _field(structure: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  f = np.zeros_like(x)
  for (cx, cy), w, a in zip(
    structure["centres"], structure["widths"], structure["weights"], strict=True
  ):
    f += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * w * w))
  angle, freq, amp = structure["stripe"]
  f += amp * np.sin(freq * (np.cos(angle) * x + np.sin(angle) * y))
  return f


def _palette(values: np.ndarray, palette: np.ndarray) -> np.ndarray:
  t = np.clip(values, 0.0, 1.0) * (len(palette) - 1)
  i = np.minimum(t.astype(np.int64), len(palette) - 2)
  frac = (t - i)[..., None]
  return palette[i] + frac * (palette[i + 1] - palette[i])


def render_pair(
  structure: dict, rng: np.random.Generator, size: int, difficulty: float
) -> tuple[np.ndarray, np.ndarray]:
  """Renders the left and right images of one structure; each float32 [size, size, 3]."""
  axis = (np.arange(size, dtype=np.float64) + 0.5) * (2.0 / size) - 1.0
  yy, xx = np.meshgrid(axis, axis, indexing="ij")
  left = _field(structure, xx, yy)
  left = _palette(0.5 + 0.5 * np.tanh(left), _PALETTE_A)
  # Right: own geometry, quantised bands, another palette, plus a distractor.
  angle = rng.normal(0.0, 0.35 * difficulty)
  scale = np.exp(rng.normal(0.0, 0.1 * difficulty))
  shift = rng.normal(0.0, 0.08 * difficulty, size=2)
  c, s = np.cos(angle), np.sin(angle)
  x = (c * (xx - shift[0]) + s * (yy - shift[1])) / scale
  y = (-s * (xx - shift[0]) + c * (yy - shift[1])) / scale
  distractor = _structure(rng)
  right = _field(structure, x, y) + 0.6 * difficulty * _field(distractor, xx, yy)
  bands = np.floor((0.5 + 0.5 * np.tanh(right)) * 5.0) / 4.0
  right = _palette(bands, _PALETTE_B)
  right = right + rng.normal(0.0, 0.03 * difficulty, right.shape)
  return left.astype(np.float32), np.clip(right, 0.0, 1.0).astype(np.float32)


class SyntheticLookalikePairs:
  """Generated left/right look-alike pairs (Grain RandomAccessDataSource).

  Args:
    num_pairs: number of pairs (= identities).
    image_size: height and width.
    difficulty: right-side nuisance and distractor strength (0 = same geometry, no distractor).
    seed: dataset seed; pair i derives from (seed, i).
  """

  modalities = ("generic", "generic")

  def __init__(
    self, num_pairs: int = 2000, *, image_size: int = 64, difficulty: float = 1.0, seed: int = 0
  ):
    if num_pairs < 1:
      raise ValueError(f"SyntheticLookalikePairs needs num_pairs >= 1, got {num_pairs}")
    self.num_pairs, self.image_size = int(num_pairs), int(image_size)
    self.difficulty, self.seed = float(difficulty), int(seed)
    self.identities = np.arange(self.num_pairs)

  def __len__(self) -> int:
    return self.num_pairs

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if not 0 <= index < self.num_pairs:
      raise IndexError(f"pair {index} out of range for {self.num_pairs} pairs")
    structure = _structure(np.random.default_rng([self.seed, 0x1A1E, index, 0]))
    rng = np.random.default_rng([self.seed, 0x1A1E, index, 1])
    left, right = render_pair(structure, rng, self.image_size, self.difficulty)
    return {"image_a": left, "image_b": right, "identity": np.int32(index)}


def totally_looks_like_source(root: str | pathlib.Path, **kwargs) -> folders.PairedImageSource:
  """Totally Looks Like layout `root/left/<stem>` + `root/right/<stem>`, RGB by default."""
  kwargs.setdefault("channels_a", 3)
  kwargs.setdefault("channels_b", 3)
  return folders.paired_stem_source(root, "left", "right", **kwargs)
