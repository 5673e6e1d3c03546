"""Synthetic faces: procedural, vectorised, deterministic from (seed, identity, index).

An identity is a latent vector `z ~ N(0, I_24)`; each coordinate goes through the
standard normal CDF to a uniform number and then to one named face parameter
(`FACE_PARAMETERS`: face shape, eye spacing and size, iris colour, brows, nose,
mouth, skin tone, hair shape and colour). Every image of an identity draws its own
nuisance (`sample_face_nuisance`): in-plane rotation, yaw and pitch, translation,
scale, lighting direction and strength, expression (smile, open mouth, raised
brows, blink), background, partial occlusion, blur and pixel noise, each scaled by
the `difficulty` knob (0 = a frontal, clean, well-lit face; 1 = the default).

Rendering evaluates signed-distance masks for each part on the whole pixel grid
with numpy (no per-pixel Python loop) and composites them back to front.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.special

from jaxsim.data.sources.procedural import ProceduralSource

LATENT_DIM = 24

# name: (low, high); latent coordinate i drives parameter i.
FACE_PARAMETERS: tuple[tuple[str, float, float], ...] = (
  ("face_width", 0.50, 0.68),
  ("face_height", 0.66, 0.84),
  ("jaw_exponent", 1.6, 2.8),  # superellipse exponent: low = pointed chin, high = square
  ("eye_spacing", 0.30, 0.46),
  ("eye_height", -0.14, 0.02),
  ("eye_width", 0.075, 0.13),
  ("eye_aspect", 0.40, 0.75),
  ("iris_hue", 0.0, 1.0),
  ("iris_darkness", 0.15, 0.7),
  ("brow_gap", 0.07, 0.16),
  ("brow_thickness", 0.015, 0.045),
  ("brow_tilt", -0.35, 0.35),
  ("nose_length", 0.12, 0.28),
  ("nose_width", 0.05, 0.11),
  ("mouth_height", 0.30, 0.48),
  ("mouth_width", 0.12, 0.26),
  ("lip_thickness", 0.015, 0.045),
  ("skin_tone", 0.0, 1.0),  # dark to light along a skin-colour ramp
  ("skin_warmth", 0.0, 1.0),
  ("hair_hue", 0.0, 1.0),  # position on a black-brown-auburn-blond-grey ramp
  ("hair_lightness", 0.0, 1.0),
  ("hairline", -0.62, -0.25),
  ("hair_volume", 0.0, 0.22),
  ("hair_length", -0.3, 0.75),  # lowest point of the hair at the sides
)
assert len(FACE_PARAMETERS) == LATENT_DIM

_SKIN_DARK = np.array([0.30, 0.19, 0.12])
_SKIN_LIGHT = np.array([0.98, 0.84, 0.72])
_HAIR_RAMP = np.array(
  [[0.06, 0.05, 0.05], [0.30, 0.18, 0.10], [0.55, 0.22, 0.10], [0.85, 0.72, 0.45], [0.7, 0.7, 0.7]]
)
_IRIS_RAMP = np.array([[0.35, 0.22, 0.10], [0.25, 0.45, 0.25], [0.25, 0.45, 0.75], [0.5, 0.5, 0.5]])


def identity_latent(seed: int, identity: int) -> np.ndarray:
  """The N(0, I) latent of one face identity; float64 [LATENT_DIM]."""
  return np.random.default_rng([seed, 0xFACE, identity]).standard_normal(LATENT_DIM)


def face_parameters(latent: np.ndarray) -> dict[str, float]:
  """Maps a latent [LATENT_DIM] to named face parameters (uniform over their ranges)."""
  latent = np.asarray(latent, dtype=np.float64)
  if latent.shape != (LATENT_DIM,):
    raise ValueError(f"face latent must have shape ({LATENT_DIM},), got {latent.shape}")
  u = scipy.special.ndtr(latent)
  return {
    name: lo + (hi - lo) * float(ui) for (name, lo, hi), ui in zip(FACE_PARAMETERS, u, strict=True)
  }


def sample_face_nuisance(rng: np.random.Generator, difficulty: float) -> dict[str, float]:
  """Draws the per-image nuisance; every magnitude scales with `difficulty`.

  The background colour varies fully from difficulty 1 on and is mid-grey at 0.
  """
  d = float(difficulty)
  return {
    "rotation": float(np.clip(rng.normal(0.0, 0.14 * d), -0.35, 0.35)),  # radians
    "yaw": float(rng.uniform(-0.45, 0.45) * d),
    "pitch": float(rng.uniform(-0.25, 0.25) * d),
    "shift_x": float(rng.normal(0.0, 0.06 * d)),
    "shift_y": float(rng.normal(0.0, 0.06 * d)),
    "scale": float(np.exp(rng.normal(0.0, 0.08 * d))),
    "light_angle": float(rng.uniform(0.0, 2 * np.pi)),
    "light_strength": float(rng.uniform(0.0, 0.6 * d)),
    "smile": float(rng.uniform(-1.0, 1.0) * d),
    "mouth_open": float(rng.uniform(0.0, 1.0) * d),
    "brow_raise": float(rng.uniform(-1.0, 1.0) * d),
    "blink": float(rng.uniform(0.0, 0.7) * d if rng.uniform() < 0.3 else 0.0),
    "background_r": float(0.5 + (rng.uniform() - 0.5) * min(d, 1.0)),
    "background_g": float(0.5 + (rng.uniform() - 0.5) * min(d, 1.0)),
    "background_b": float(0.5 + (rng.uniform() - 0.5) * min(d, 1.0)),
    "background_gradient": float(rng.uniform(-0.3, 0.3)),
    "gain": float(np.exp(rng.normal(0.0, 0.15 * d))),
    "occlusion": float(rng.uniform() < 0.3 * d),
    "occlusion_x": float(rng.uniform(-0.7, 0.7)),
    "occlusion_y": float(rng.uniform(-0.6, 0.8)),
    "occlusion_w": float(rng.uniform(0.2, 0.5)),
    "occlusion_h": float(rng.uniform(0.15, 0.4)),
    "occlusion_grey": float(rng.uniform()),
    "blur": float(rng.uniform(0.0, 1.0) * d),  # in pixels at 64 px, scaled with size
    "noise": float(rng.uniform(0.0, 0.05) * d),
    "noise_seed": int(rng.integers(2**31)),
  }


def _ramp(colours: np.ndarray, t: float) -> np.ndarray:
  t = float(np.clip(t, 0.0, 1.0)) * (len(colours) - 1)
  i = min(int(t), len(colours) - 2)
  return colours[i] + (t - i) * (colours[i + 1] - colours[i])


def _fill(mask_distance: np.ndarray, px: float) -> np.ndarray:
  """Anti-aliased coverage from a signed distance (negative inside), one pixel wide."""
  return np.clip(0.5 - mask_distance / px, 0.0, 1.0)


def render_face(params: dict[str, float], nuisance: dict[str, float], size: int) -> np.ndarray:
  """Renders one face; returns float32 [size, size, 3] in [0, 1]."""
  p, n = params, nuisance
  px = 2.0 / size
  axis = (np.arange(size, dtype=np.float32) + 0.5) * px - 1.0
  yy, xx = np.meshgrid(axis, axis, indexing="ij")
  # Pixel -> canonical face coordinates (inverse of scale, rotation, translation).
  # Python floats, so that numpy keeps the float32 grid in float32.
  c, s = float(np.cos(n["rotation"])), float(np.sin(n["rotation"]))
  x0, y0 = xx - n["shift_x"], yy - n["shift_y"]
  x = (c * x0 + s * y0) / n["scale"]
  y = (-s * x0 + c * y0) / n["scale"]
  px = px / n["scale"]

  bg = np.array([n["background_r"], n["background_g"], n["background_b"]], np.float32)
  image = (bg * (1.0 + n["background_gradient"] * yy[..., None])).astype(np.float32)

  def paint(coverage: np.ndarray, colour) -> None:
    image[...] += coverage[..., None] * (np.asarray(colour, np.float32) - image)

  yaw, pitch = n["yaw"], n["pitch"]
  a = p["face_width"] * (1.0 - 0.25 * abs(yaw))
  b = p["face_height"]
  cy = 0.08
  skin = _ramp(np.stack([_SKIN_DARK, _SKIN_LIGHT]), p["skin_tone"])
  skin = skin * (1.0 + 0.12 * (p["skin_warmth"] - 0.5) * np.array([1.0, -0.3, -1.0]))
  hair = _ramp(_HAIR_RAMP, p["hair_hue"]) * (0.6 + 0.6 * p["hair_lightness"])

  # Hair behind the head.
  hv = p["hair_volume"]
  hb = np.sqrt((x / (a + hv)) ** 2 + ((y - cy + 0.05) / (b + 0.6 * hv)) ** 2) - 1.0
  behind = _fill(hb * (a + hv), px) * _fill(y - p["hair_length"], px)
  paint(behind, hair)
  # Ears, then the face (superellipse).
  for side in (-1.0, 1.0):
    ex = side * a * (1.0 - 0.4 * yaw * side)
    ear = np.sqrt(((x - ex) / 0.07) ** 2 + ((y - cy + 0.02) / 0.13) ** 2) - 1.0
    paint(_fill(ear * 0.07, px), skin * 0.9)
  q = p["jaw_exponent"]
  face_d = (np.abs(x / a) ** q + np.abs((y - cy) / b) ** q) ** (1.0 / q) - 1.0
  face = _fill(face_d * min(a, b), px)
  paint(face, skin)
  # Fringe: hair over the forehead above the hairline curve.
  hairline = p["hairline"] + 0.35 * x**2 + cy
  paint(face * _fill(y - hairline, px), hair)

  # Features move with yaw (they sit on the front of the head) and pitch. Each is
  # evaluated only inside the pixel window that covers it, which is most of the speed.
  dx, dy = 0.3 * yaw, 0.15 * pitch

  def window(cx: float, cy_: float, rx: float, ry: float) -> tuple[slice, slice]:
    corners = np.array(
      [[cx - rx, cy_ - ry], [cx + rx, cy_ - ry], [cx - rx, cy_ + ry], [cx + rx, cy_ + ry]]
    ) + np.array([dx, dy])
    corners = corners * n["scale"]
    px_x = c * corners[:, 0] - s * corners[:, 1] + n["shift_x"]
    px_y = s * corners[:, 0] + c * corners[:, 1] + n["shift_y"]
    cols = (px_x + 1.0) * size / 2 - 0.5
    rows = (px_y + 1.0) * size / 2 - 0.5
    r0, r1 = int(max(np.floor(rows.min()) - 2, 0)), int(min(np.ceil(rows.max()) + 3, size))
    c0, c1 = int(max(np.floor(cols.min()) - 2, 0)), int(min(np.ceil(cols.max()) + 3, size))
    return slice(r0, max(r0, r1)), slice(c0, max(c0, c1))

  def paint_in(sl, coverage: np.ndarray, colour) -> None:
    sub = image[sl]
    image[sl] = sub + coverage[..., None] * (np.asarray(colour, np.float32) - sub)

  # Eyes, irises, pupils, brows.
  ew, eh = p["eye_width"], max(p["eye_width"] * p["eye_aspect"] * (1.0 - n["blink"]), 1e-3)
  iris = _ramp(_IRIS_RAMP, p["iris_hue"]) * (1.0 - p["iris_darkness"])
  brow_colour = hair * 0.7
  for side in (-1.0, 1.0):
    ex = side * p["eye_spacing"] / 2 * (1.0 - 0.3 * yaw * side)
    ey = p["eye_height"] + cy
    by0 = ey - p["brow_gap"] - 0.035 * n["brow_raise"]
    sl = window(ex, 0.5 * (ey + by0), 1.3 * ew, 0.5 * (ey - by0) + 0.3 * ew + 0.06)
    fx, fy = x[sl] - dx, y[sl] - dy
    eye = np.sqrt(((fx - ex) / ew) ** 2 + ((fy - ey) / eh) ** 2) - 1.0
    inside = _fill(eye * eh, px)
    paint_in(sl, _fill(eye * min(ew, eh), px), (0.95, 0.95, 0.93))
    r = np.hypot(fx - ex, fy - ey)
    ir = 0.55 * ew
    paint_in(sl, _fill(r - ir, px) * inside, iris)
    paint_in(sl, _fill(r - 0.4 * ir, px) * inside, (0.03, 0.03, 0.03))
    by = by0 + side * p["brow_tilt"] * (fx - ex)
    brow = np.maximum(np.abs(fy - by) - p["brow_thickness"], np.abs(fx - ex) - 1.2 * ew)
    paint_in(sl, _fill(brow, px), brow_colour)
  # Nose: a shaded wedge and two nostrils.
  ny0 = p["eye_height"] + cy + 0.02
  ny1 = ny0 + p["nose_length"]
  sl = window(0.0, 0.5 * (ny0 + ny1), p["nose_width"] + 0.03, 0.5 * (ny1 - ny0) + 0.03)
  fx, fy = x[sl] - dx, y[sl] - dy
  t = np.clip((fy - ny0) / (ny1 - ny0), 0.0, 1.0)
  nose = np.maximum(np.abs(fx) - p["nose_width"] * (0.3 + 0.7 * t), np.maximum(ny0 - fy, fy - ny1))
  paint_in(sl, 0.35 * _fill(nose, px), skin * 0.7)
  for side in (-1.0, 1.0):
    nostril = np.hypot((fx - side * 0.5 * p["nose_width"]) / 1.6, fy - ny1) - 0.018
    paint_in(sl, _fill(nostril, px), skin * 0.35)
  # Mouth: a curved band whose curvature is the smile; opening shows a dark gap.
  mw, mt = p["mouth_width"], p["lip_thickness"] * (1.0 + 0.8 * n["mouth_open"])
  m0 = p["mouth_height"] + cy
  sl = window(0.0, m0, mw + 0.02, mt + 0.08)
  fx, fy = x[sl] - dx, y[sl] - dy
  my = m0 - 0.06 * n["smile"] * (1.0 - (fx / mw) ** 2)
  mouth = np.maximum(np.abs(fy - my) - mt, np.abs(fx) - mw)
  paint_in(sl, _fill(mouth, px), skin * np.array([0.85, 0.45, 0.45]))
  gap = np.maximum(np.abs(fy - my) - 0.6 * mt * n["mouth_open"], np.abs(fx) - 0.8 * mw)
  paint_in(sl, _fill(gap, px), (0.15, 0.05, 0.05))

  # Directional lighting on an ellipsoidal head.
  nx, ny = np.clip(x / (a + hv), -1, 1), np.clip((y - cy) / (b + hv), -1, 1)
  nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
  la = n["light_angle"]
  lambert = np.clip(0.6 * np.cos(la) * nx + 0.6 * np.sin(la) * ny + 0.8 * nz, 0.0, 1.0)
  head = np.clip(face + behind, 0.0, 1.0)
  shade = 1.0 - n["light_strength"] * head * (1.0 - lambert)
  image = image * shade[..., None] * n["gain"]

  if n["occlusion"]:
    occ = np.maximum(np.abs(xx - n["occlusion_x"]) - n["occlusion_w"] / 2, 0.0)
    occ = np.maximum(occ, np.abs(yy - n["occlusion_y"]) - n["occlusion_h"] / 2)
    paint(_fill(occ, 2.0 / size), n["occlusion_grey"])
  sigma = n["blur"] * size / 64.0
  if sigma > 0.3:
    image = scipy.ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="nearest")
  if n["noise"] > 0:
    noise_rng = np.random.default_rng(n["noise_seed"])
    image = image + noise_rng.normal(0.0, n["noise"], image.shape).astype(np.float32)
  return np.clip(image, 0.0, 1.0).astype(np.float32)


class SyntheticFaces(ProceduralSource):
  """Random-access source of procedural face images (Grain RandomAccessDataSource).

  Record `i` is image `i % images_per_identity` of identity `i // images_per_identity`:
  `{"image": float32 [size, size, 3] in [0, 1], "identity": int32}`.

  Args:
    num_identities: how many identities.
    images_per_identity: images rendered per identity.
    image_size: height and width in pixels.
    difficulty: nuisance scale (0 = clean frontal images, 1 = default).
    seed: dataset seed; identity latents and nuisances derive from (seed, identity, index).
    latents: optional [num_identities, LATENT_DIM] identity latents that replace the
      seeded ones (the face-fingerprint source uses this to share a latent).
  """

  modality = "face"
  latent_dim = LATENT_DIM
  identity_latent = staticmethod(identity_latent)

  def __init__(
    self,
    num_identities: int = 500,
    images_per_identity: int = 10,
    *,
    image_size: int = 64,
    difficulty: float = 1.0,
    seed: int = 0,
    latents: np.ndarray | None = None,
  ):
    super().__init__(
      num_identities,
      images_per_identity,
      image_size=image_size,
      difficulty=difficulty,
      seed=seed,
      latents=latents,
    )

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    identity, k = self._locate(index)
    rng = np.random.default_rng([self.seed, 0xFACE, identity, k, 1])
    image = render_face(
      face_parameters(self.latents[identity]),
      sample_face_nuisance(rng, self.difficulty),
      self.image_size,
    )
    return {"image": image, "identity": np.int32(identity)}

  def __repr__(self) -> str:
    return (
      f"SyntheticFaces(num_identities={self.num_identities}, images_per_identity="
      f"{self.images_per_identity}, image_size={self.image_size}, difficulty={self.difficulty})"
    )
