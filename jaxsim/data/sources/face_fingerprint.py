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

import numpy as np

from jaxsim.data.sources import faces, fingerprints


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
