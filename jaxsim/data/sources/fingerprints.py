"""Synthetic fingerprints: Gabor-filter ridge growth (SFinGe-style), vectorised.

An identity ("finger") is a latent vector `z ~ N(0, I_56)`:
- `z[:8]` set the global pattern (`FINGERPRINT_PARAMETERS`): the pattern class
  (arch, tented arch, left loop, right loop, whorl; Henry classes with roughly
  their natural frequencies), the core position, the delta spread, a rotation,
  the ridge period and the ridge curvature of arches.
- `z[8:]` weight 48 fixed white-noise basis images into the seed image from which
  the ridges grow, so the minutiae (ridge endings and bifurcations that appear
  where growing ridges meet) are a deterministic function of the latent.

The orientation field comes from the core and delta singularities with the
zero-pole model of Sherlock and Monro (1993): theta(z) = theta0 + 1/2 * (sum over
cores of arg(z - c) - sum over deltas of arg(z - d)). The master print grows by
iterating a bank of oriented Gabor filters (applied in the Fourier domain) on the
seed image and keeping, at each pixel, the response of the filter aligned with the
local orientation, as in SFinGe (Cappelli, Maio, Maltoni 2000). Masters are cached
per finger. Each impression then applies per-image nuisance scaled by `difficulty`:
rigid transform, smooth elastic distortion, finger-pad contact region and partial
crop, pressure (ridge thickness), contrast, dry patches, blur and noise.

References:
  B. G. Sherlock, D. M. Monro, "A model for interpreting fingerprint topology",
  Pattern Recognition 26(7), 1993.
  R. Cappelli, D. Maio, D. Maltoni, "Synthetic fingerprint-image generation", ICPR 2000.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.ndimage
import scipy.special

from jaxsim.data.sources.procedural import ProceduralSource

GLOBAL_DIM = 8
NOISE_DIM = 48
LATENT_DIM = GLOBAL_DIM + NOISE_DIM

PATTERN_CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")
# Cumulative class probabilities (approximate natural frequencies).
_CLASS_EDGES = np.cumsum([0.06, 0.06, 0.32, 0.30, 0.26])

FINGERPRINT_PARAMETERS: tuple[tuple[str, float, float], ...] = (
  ("pattern_class", 0.0, 1.0),  # through _CLASS_EDGES
  ("core_x", -0.15, 0.15),
  ("core_y", -0.25, 0.05),
  ("delta_spread", 0.35, 0.7),
  ("rotation", -0.25, 0.25),  # radians
  ("ridges_across", 11.0, 15.0),  # ridge count across the image (sets the period)
  ("arch_curvature", 0.4, 1.1),
  ("whorl_separation", 0.08, 0.2),
)
assert len(FINGERPRINT_PARAMETERS) == GLOBAL_DIM

_MASTER_MARGIN = 1.35  # the master covers [-1.35, 1.35]^2 so impressions can move
_NUM_ORIENTATIONS = 12
_GROWTH_ITERATIONS = 7


def identity_latent(seed: int, identity: int) -> np.ndarray:
  """The N(0, I) latent of one finger; float64 [LATENT_DIM]."""
  return np.random.default_rng([seed, 0xF1, identity]).standard_normal(LATENT_DIM)


def fingerprint_parameters(latent: np.ndarray) -> dict[str, float | str]:
  """Maps a latent [LATENT_DIM] to the named global parameters (noise weights excluded)."""
  latent = np.asarray(latent, np.float64)
  if latent.shape != (LATENT_DIM,):
    raise ValueError(f"fingerprint latent must have shape ({LATENT_DIM},), got {latent.shape}")
  u = scipy.special.ndtr(latent[:GLOBAL_DIM])
  params: dict[str, float | str] = {
    name: lo + (hi - lo) * float(ui)
    for (name, lo, hi), ui in zip(FINGERPRINT_PARAMETERS, u, strict=True)
  }
  params["pattern_class"] = PATTERN_CLASSES[int(np.searchsorted(_CLASS_EDGES, u[0]))]
  return params


def orientation_field(params: dict, x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Ridge orientation (radians, modulo pi) on coordinates x, y (y points down)."""
  kind = params["pattern_class"]
  cx, cy, ds = params["core_x"], params["core_y"], params["delta_spread"]
  cr, sr = np.cos(params["rotation"]), np.sin(params["rotation"])
  xr, yr = cr * x + sr * y, -sr * x + cr * y
  z = xr + 1j * yr
  if kind == "arch":
    # Ridges y = k x^2 g(y): slope 2 k x g, flattened away from the core row.
    k = params["arch_curvature"]
    g = np.exp(-(((yr - cy) / 0.8) ** 2))
    return np.arctan(-2.0 * k * (xr - cx) * g) + params["rotation"]
  if kind == "tented_arch":
    cores, deltas = [cx + 1j * cy], [cx + 1j * (cy + 0.5 * ds)]
  elif kind == "left_loop":
    cores, deltas = [cx + 1j * cy], [cx - ds + 1j * (cy + ds)]
  elif kind == "right_loop":
    cores, deltas = [cx + 1j * cy], [cx + ds + 1j * (cy + ds)]
  else:  # whorl
    h = params["whorl_separation"]
    cores = [cx + 1j * (cy - h), cx + 1j * (cy + h)]
    deltas = [cx - ds + 1j * (cy + ds + h), cx + ds + 1j * (cy + ds + h)]
  theta = np.zeros_like(xr)
  for c in cores:
    theta += np.angle(z - c)
  for d in deltas:
    theta -= np.angle(z - d)
  return 0.5 * theta + params["rotation"]


class _MasterRenderer:
  """Grows master prints of one size; holds the fixed noise basis and Gabor bank."""

  def __init__(self, image_size: int):
    self.size = int(np.ceil(image_size * _MASTER_MARGIN))
    m = self.size
    # The basis is fixed (not seeded by the dataset) so that a latent fully
    # determines a finger.
    self.basis = (
      np.random.default_rng(20240511).standard_normal((NOISE_DIM, m * m)).astype(np.float32)
    )
    axis = (np.arange(m, dtype=np.float32) + 0.5) * (2 * _MASTER_MARGIN / m) - _MASTER_MARGIN
    self.y, self.x = np.meshgrid(axis, axis, indexing="ij")
    self.fy = np.fft.fftfreq(m)[:, None].astype(np.float32)
    self.fx = np.fft.rfftfreq(m)[None, :].astype(np.float32)
    self.image_size = image_size
    self.bins = np.arange(_NUM_ORIENTATIONS) * (np.pi / _NUM_ORIENTATIONS)

  def gabor_bank(self, frequency: float) -> np.ndarray:
    """Oriented band-pass filters [num_orientations, m, m//2+1] (real, Fourier domain)."""
    bank = []
    for theta in self.bins:
      # Ridges run along theta, so the carrier points along the normal.
      nx, ny = -np.sin(theta), np.cos(theta)
      across = self.fx * nx + self.fy * ny
      along = -self.fx * ny + self.fy * nx
      g = np.exp(-((np.abs(across) - frequency) ** 2) / (2 * (0.3 * frequency) ** 2))
      g = g * np.exp(-(along**2) / (2 * (0.15 * frequency) ** 2))
      bank.append(g)
    return np.stack(bank).astype(np.float32)

  def render(self, latent: np.ndarray) -> np.ndarray:
    """Master ridge map [m, m] in [-1, 1] (positive = ridge)."""
    params = fingerprint_parameters(latent)
    m = self.size
    frequency = params["ridges_across"] / (self.image_size)  # cycles per pixel
    bank = self.gabor_bank(frequency)
    theta = np.mod(orientation_field(params, self.x, self.y), np.pi)
    # Linear interpolation between the two nearest orientation bins.
    pos = theta / (np.pi / _NUM_ORIENTATIONS)
    lo = np.floor(pos).astype(np.int64) % _NUM_ORIENTATIONS
    hi = (lo + 1) % _NUM_ORIENTATIONS
    w = (pos - np.floor(pos)).astype(np.float32)
    rows, cols = np.indices((m, m))
    seed = (latent[GLOBAL_DIM:].astype(np.float32) @ self.basis).reshape(m, m)
    s = seed / (np.abs(seed).max() + 1e-6)
    for _ in range(_GROWTH_ITERATIONS):
      responses = np.fft.irfft2(np.fft.rfft2(s)[None] * bank, s=(m, m))
      r = (1 - w) * responses[lo, rows, cols] + w * responses[hi, rows, cols]
      s = np.tanh(4.0 * r / (np.abs(r).std() + 1e-6))
    return s.astype(np.float32)


def sample_fingerprint_nuisance(rng: np.random.Generator, difficulty: float) -> dict:
  """Draws the per-impression nuisance; magnitudes scale with `difficulty`."""
  d = float(difficulty)
  return {
    "rotation": float(np.clip(rng.normal(0.0, 0.15 * d), -0.45, 0.45)),
    "shift_x": float(rng.normal(0.0, 0.1 * d)),
    "shift_y": float(rng.normal(0.0, 0.1 * d)),
    "scale": float(np.exp(rng.normal(0.0, 0.04 * d))),
    "elastic": float(rng.uniform(0.0, 0.06) * d),  # displacement amplitude
    "elastic_phases": rng.uniform(0, 2 * np.pi, size=(2, 3)).tolist(),
    "elastic_freqs": rng.uniform(0.5, 1.5, size=(2, 3)).tolist(),
    "pad_x": float(rng.normal(0.0, 0.08 * d)),
    "pad_y": float(rng.normal(0.0, 0.08 * d)),
    "pad_a": float(rng.uniform(0.7, 0.95) - 0.1 * d * rng.uniform()),
    "pad_b": float(rng.uniform(0.85, 1.1) - 0.1 * d * rng.uniform()),
    "crop": float(rng.uniform() < 0.3 * d),
    "crop_angle": float(rng.uniform(0, 2 * np.pi)),
    "crop_offset": float(rng.uniform(0.2, 0.6)),
    "pressure": float(rng.uniform(-0.5, 0.5) * d),
    "contrast": float(rng.uniform(0.55, 1.0) if d > 0 else 0.9),
    "background": float(rng.uniform(0.8, 1.0)),
    "dryness": float(rng.uniform(0.0, 0.7) * d),
    "blur": float(rng.uniform(0.0, 0.8) * d),
    "noise": float(rng.uniform(0.0, 0.06) * d),
    "noise_seed": int(rng.integers(2**31)),
  }


def render_impression(master: np.ndarray, nuisance: dict, size: int) -> np.ndarray:
  """One impression of a master print; float32 [size, size, 1] in [0, 1], ridges dark."""
  n = nuisance
  m = master.shape[0]
  axis = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
  yy, xx = np.meshgrid(axis, axis, indexing="ij")
  c, s = float(np.cos(n["rotation"])), float(np.sin(n["rotation"]))
  x0, y0 = xx - n["shift_x"], yy - n["shift_y"]
  x = (c * x0 + s * y0) / n["scale"]
  y = (-s * x0 + c * y0) / n["scale"]
  if n["elastic"] > 0:
    (px, py), (fx, fy) = np.asarray(n["elastic_phases"]), np.asarray(n["elastic_freqs"])
    ex = sum(np.sin(np.pi * (fx[j] * x + fy[j] * y) + px[j]) for j in range(3)) / 3
    ey = sum(np.cos(np.pi * (fy[j] * x - fx[j] * y) + py[j]) for j in range(3)) / 3
    # Distortion grows away from the centre of the pad (skin is pinned where it presses).
    r2 = np.clip(x**2 + y**2, 0.0, 1.5)
    x, y = x + n["elastic"] * r2 * ex, y + n["elastic"] * r2 * ey
  rows = (y + _MASTER_MARGIN) * m / (2 * _MASTER_MARGIN) - 0.5
  cols = (x + _MASTER_MARGIN) * m / (2 * _MASTER_MARGIN) - 0.5
  ridge = scipy.ndimage.map_coordinates(master, [rows, cols], order=1, mode="constant", cval=0.0)
  ink = np.clip(0.5 + 0.7 * (ridge + n["pressure"]), 0.0, 1.0)
  # Contact region of the finger pad, with an optional straight partial-crop edge.
  pad = np.sqrt(((xx - n["pad_x"]) / n["pad_a"]) ** 2 + ((yy - n["pad_y"]) / n["pad_b"]) ** 2)
  contact = np.clip((1.0 - pad) * size / 6.0, 0.0, 1.0)
  if n["crop"]:
    dist = np.cos(n["crop_angle"]) * xx + np.sin(n["crop_angle"]) * yy - n["crop_offset"]
    contact = contact * np.clip(-dist * size / 4.0, 0.0, 1.0)
  noise_rng = np.random.default_rng(n["noise_seed"])
  if n["dryness"] > 0:
    blotch = scipy.ndimage.zoom(
      noise_rng.uniform(size=(6, 6)).astype(np.float32), size / 6, order=1
    )
    ink = ink * (1.0 - n["dryness"] * np.clip(blotch[:size, :size] * 2 - 1, 0.0, 1.0))
  image = n["background"] - n["contrast"] * contact * ink
  if n["blur"] > 0.3:
    image = scipy.ndimage.gaussian_filter(image, n["blur"] * size / 96.0, mode="nearest")
  if n["noise"] > 0:
    image = image + noise_rng.normal(0.0, n["noise"], image.shape).astype(np.float32)
  return np.clip(image, 0.0, 1.0).astype(np.float32)[..., None]


class SyntheticFingerprints(ProceduralSource):
  """Random-access source of synthetic fingerprint impressions (Grain RandomAccessDataSource).

  Record `i` is impression `i % impressions_per_finger` of finger
  `i // impressions_per_finger`: `{"image": float32 [size, size, 1] in [0, 1]
  (dark ridges on a light background), "identity": int32}`.

  Args:
    num_identities: how many fingers.
    impressions_per_finger: impressions per finger.
    image_size: height and width in pixels (the ridge count across the image is
      fixed, 11-15, so the ridge period scales with the size).
    difficulty: nuisance scale (0 = centred, undistorted, clean; 1 = default).
    seed: dataset seed; finger latents and nuisances derive from (seed, identity, index).
    latents: optional [num_identities, LATENT_DIM] latents replacing the seeded ones.
    cache_masters: keep each finger's master print after its first use.
  """

  modality = "fingerprint"
  latent_dim = LATENT_DIM
  min_image_size = 16
  identity_latent = staticmethod(identity_latent)

  def __init__(
    self,
    num_identities: int = 500,
    impressions_per_finger: int = 8,
    *,
    image_size: int = 64,
    difficulty: float = 1.0,
    seed: int = 0,
    latents: np.ndarray | None = None,
    cache_masters: bool = True,
  ):
    super().__init__(
      num_identities,
      impressions_per_finger,
      image_size=image_size,
      difficulty=difficulty,
      seed=seed,
      latents=latents,
    )
    self._renderer = _MasterRenderer(self.image_size)
    self._cache_masters = cache_masters
    self._masters: dict[int, np.ndarray] = {}
    self._lock = threading.Lock()

  def master(self, identity: int) -> np.ndarray:
    """The master ridge map of one finger, [m, m] in [-1, 1]."""
    master = self._masters.get(identity)
    if master is None:
      master = self._renderer.render(self.latents[identity])
      if self._cache_masters:
        with self._lock:
          self._masters[identity] = master
    return master

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    identity, k = self._locate(index)
    rng = np.random.default_rng([self.seed, 0xF1, identity, k, 1])
    image = render_impression(
      self.master(identity), sample_fingerprint_nuisance(rng, self.difficulty), self.image_size
    )
    return {"image": image, "identity": np.int32(identity)}

  def __getstate__(self):
    # The lock cannot be pickled (multiprocessing workers); the cache is rebuilt there.
    state = dict(self.__dict__)
    del state["_lock"]
    state["_masters"] = {}
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def __repr__(self) -> str:
    return (
      f"SyntheticFingerprints(num_identities={self.num_identities}, impressions_per_finger="
      f"{self.images_per_identity}, image_size={self.image_size}, difficulty={self.difficulty})"
    )
