"""Face-fingerprint cross-modal source with a correlation knob.

Each subject `s` has a face latent `f_s ~ N(0, I_24)` (it is the face identity,
see `faces.FACE_PARAMETERS`) and a fingerprint latent `g_s` in R^56 (the finger
identity, see `fingerprints.FINGERPRINT_PARAMETERS` and its noise weights):

    g_s[k] = rho * f_s[k mod 24] + sqrt(1 - rho^2) * e_s[k],   e_s ~ N(0, I_56)

with `f_s` and `e_s` drawn independently from (seed, subject). So every `g_s[k]` is
N(0, 1) for any rho, its correlation with the face latent coordinate `f_s[k mod 24]`
is exactly rho, and:
- rho = 0: the fingerprint identity is independent of the face identity (the
  biological situation of the first source project; cross-modal matching can
  do no better than chance);
- rho = 1: the fingerprint is a deterministic function of the face latent (the
  positive control, where cross-modal matching is learnable).
Nuisance (pose, lighting, impression) is drawn independently per image in both
modalities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxsim.data.sources import faces, fingerprints
from jaxsim.data.sources.arrays import ArrayImageSource, ArrayPairSource
from jaxsim.data.sources.folders import (
  fvc2002_source,
  identity_folder_source,
  paired_identity_folder_source,
)


def subject_latents(
  num_subjects: int, correlation: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Face latents [S, 24] and fingerprint latents [S, 56] coupled by `correlation`."""
  if not 0.0 <= correlation <= 1.0:
    raise ValueError(
      f"face-fingerprint correlation must be in [0, 1], got {correlation}; "
      "0 = independent modalities, 1 = fingerprint fully determined by the face latent"
    )
  face = np.stack([faces.identity_latent(seed, s) for s in range(num_subjects)])
  independent = np.stack([fingerprints.identity_latent(seed, s) for s in range(num_subjects)])
  shared = face[:, np.arange(fingerprints.LATENT_DIM) % faces.LATENT_DIM]
  fp = correlation * shared + np.sqrt(1.0 - correlation**2) * independent
  return face, fp


class FaceFingerprintSource:
  """Paired face and fingerprint images per subject (Grain RandomAccessDataSource).

  Record `i` is sample `k = i % images_per_subject` of subject
  `i // images_per_subject`: `{"image_a": face float32 [H, W, 3], "image_b":
  fingerprint float32 [H, W, 1], "identity": int32 subject}`; face image k and
  fingerprint impression k of the subject.

  `faces` and `fingerprints` are the two unimodal sources over the same subjects
  (records aligned with this one), for the unimodal verifiers and fusion.

  Args:
    num_subjects: number of subjects.
    images_per_subject: face images and fingerprint impressions per subject.
    correlation: rho in [0, 1], see the module docstring.
    image_size: height and width of both modalities.
    face_difficulty, fingerprint_difficulty: nuisance scales of the two generators.
    seed: dataset seed.
  """

  modalities = ("face", "fingerprint")

  def __init__(
    self,
    num_subjects: int = 500,
    images_per_subject: int = 8,
    *,
    correlation: float = 0.0,
    image_size: int = 64,
    face_difficulty: float = 1.0,
    fingerprint_difficulty: float = 1.0,
    seed: int = 0,
  ):
    face_latents, fp_latents = subject_latents(num_subjects, correlation, seed)
    self.correlation = float(correlation)
    self.faces = faces.SyntheticFaces(
      num_subjects,
      images_per_subject,
      image_size=image_size,
      difficulty=face_difficulty,
      seed=seed,
      latents=face_latents,
    )
    self.fingerprints = fingerprints.SyntheticFingerprints(
      num_subjects,
      images_per_subject,
      image_size=image_size,
      difficulty=fingerprint_difficulty,
      seed=seed,
      latents=fp_latents,
    )
    self.identities = self.faces.identities

  def __len__(self) -> int:
    return len(self.faces)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    face, fp = self.faces[index], self.fingerprints[index]
    return {"image_a": face["image"], "image_b": fp["image"], "identity": face["identity"]}

  def __repr__(self) -> str:
    return (
      f"FaceFingerprintSource(num_subjects={self.faces.num_identities}, correlation="
      f"{self.correlation}, image_size={self.faces.image_size})"
    )


# ---------------------------------------------------------------------------
# Paired records in memory, from built-in or real data


class PairedArrays(ArrayPairSource):
  """Face (modality A) and fingerprint (modality B) images of the same subjects in memory.

  Record i: `{"image_a": face, "image_b": fingerprint, "identity": int32}`, the face and
  the fingerprint of subject `identities[i]`, whose name is `identity_names[...]`.
  """

  def __init__(self, faces: np.ndarray, fingerprints: np.ndarray, identities: np.ndarray, names):
    super().__init__(faces, fingerprints, identities, modalities=("face", "fingerprint"))
    self.identity_names = list(names)

  @property
  def faces(self) -> np.ndarray:
    return self.images_a

  @property
  def fingerprints(self) -> np.ndarray:
    return self.images_b

  def face_source(self) -> ArrayImageSource:
    return self.source_a()

  def fingerprint_source(self) -> ArrayImageSource:
    return self.source_b()


def builtin_data(
  cfg: Any, correlation: float, faces: np.ndarray | None = None, seed: int = 0
) -> PairedArrays:
  """Renders `FaceFingerprintSource` at `correlation` (faces do not depend on it: reusable),
  in `cfg.render_workers` processes (default 1; 0: one per CPU core)."""
  src = FaceFingerprintSource(
    cfg.num_subjects,
    cfg.images_per_subject,
    correlation=correlation,
    image_size=cfg.image_size,
    face_difficulty=cfg.face_difficulty,
    fingerprint_difficulty=cfg.fingerprint_difficulty,
    seed=seed,
  )
  workers = cfg.get("render_workers", 1)
  face_images = src.faces.render(workers) if faces is None else faces
  fp = src.fingerprints.render(workers)
  names = [f"subject_{s}" for s in range(cfg.num_subjects)]
  return PairedArrays(face_images, fp, src.identities, names)


def chimeric_data(cfg: Any, seed: int) -> PairedArrays:
  """Virtual subjects: face identity j paired at random with fingerprint identity j.

  The usual construction of multibiometric studies without a true multimodal set. Each
  virtual subject gets min(#faces, #impressions) records (the first ones in file order),
  and there are min(#face identities, #fingers) subjects (or `num_subjects`).
  """
  if not cfg.face_root or not cfg.fingerprint_root:
    raise ValueError(
      "data.source='chimeric' needs --config.data.face_root=DIR (root/<subject>/<image>, "
      "e.g. ORL faces) and --config.data.fingerprint_root=DIR (FVC2002 with DBn_B folders)"
    )
  size = cfg.image_size
  skip = cfg.get("skip_corrupt", False)
  faces = identity_folder_source(
    cfg.face_root, image_size=size, channels=cfg.face_channels, modality="face", skip_corrupt=skip
  )
  fps = fvc2002_source(
    cfg.fingerprint_root,
    tuple(cfg.fingerprint_databases),
    image_size=size,
    crop_fraction=cfg.fingerprint_crop,
    skip_corrupt=skip,
  )
  num_faces, num_fingers = len(faces.identity_names), len(fps.identity_names)
  n = min(num_faces, num_fingers)
  if cfg.num_subjects:
    if cfg.num_subjects > n:
      raise ValueError(
        f"data.num_subjects={cfg.num_subjects} but only {num_faces} face identities and "
        f"{num_fingers} fingers were found; use at most {n}"
      )
    n = cfg.num_subjects
  rng = np.random.default_rng([seed, 0xC41])
  face_ids = rng.permutation(num_faces)[:n]
  finger_ids = rng.permutation(num_fingers)[:n]
  per = min(
    min(int(np.sum(faces.identities == f)) for f in face_ids),
    min(int(np.sum(fps.identities == g)) for g in finger_ids),
  )
  face_images, fp_images, ids, names = [], [], [], []
  for subject, (f, g) in enumerate(zip(face_ids, finger_ids, strict=True)):
    fr = np.flatnonzero(faces.identities == f)[:per]
    gr = np.flatnonzero(fps.identities == g)[:per]
    face_images += [faces[int(r)]["image"] for r in fr]
    fp_images += [fps[int(r)]["image"] for r in gr]
    ids += [subject] * per
    names.append(f"{faces.identity_names[f]}+{fps.identity_names[g]}")
  return PairedArrays(np.stack(face_images), np.stack(fp_images), np.array(ids), names)


def paired_folder_data(cfg: Any) -> PairedArrays:
  """A real paired set, `root/face/<id>/*` and `root/fingerprint/<id>/*`."""
  if not cfg.root:
    raise ValueError("data.source='paired_folders' needs --config.data.root=DIR")
  src = paired_identity_folder_source(
    cfg.root,
    channels_a=cfg.face_channels,
    channels_b=1,
    image_size=cfg.image_size,
    skip_corrupt=cfg.get("skip_corrupt", False),
  )
  rows = [src[i] for i in range(len(src))]
  return PairedArrays(
    np.stack([r["image_a"] for r in rows]),
    np.stack([r["image_b"] for r in rows]),
    src.identities,
    src.identity_names,
  )


def load_paired_data(
  cfg: Any, seed: int, correlation: float | None = None, faces: np.ndarray | None = None
) -> PairedArrays:
  """Face and fingerprint records of the source `cfg.source` names (a task's `data` section).

  `builtin` renders `FaceFingerprintSource` at `correlation` (default `cfg.correlation`;
  pass `faces` to reuse rendered faces, which do not depend on it), `chimeric` pairs
  real face identities with real fingers, `paired_folders` reads a truly paired set.
  """
  if cfg.source == "builtin":
    rho = cfg.correlation if correlation is None else correlation
    return builtin_data(cfg, rho, faces, seed=seed)
  if cfg.source == "chimeric":
    return chimeric_data(cfg, seed)
  if cfg.source == "paired_folders":
    return paired_folder_data(cfg)
  raise ValueError(f"data.source must be builtin, chimeric or paired_folders, got {cfg.source!r}")
