"""Fixed (not learned, not random) preprocessing of a learned model's input images.

`preprocess(images, name)` maps [N, H, W, C] float32 images in [0, 1] to the same shape
and range. Tasks apply it to the images a model trains and is evaluated on; classical
baselines keep the raw images (they bring their own normalisation).

- "none": unchanged.
- "local_contrast": each pixel minus the Gaussian-weighted local mean, divided by the
  local standard deviation (Gaussian sigma = `LOCAL_SIGMA` of the image side; 8 pixels
  at 192), mapped to [0, 1] as 0.5 + z / 6 and clipped. The ridge-contrast equaliser of
  FingerCode-style matchers (`baselines.FingerCode`); it removes the sensors' different
  brightness and contrast. Chosen on FVC2002 validation fingers
  (`benchmarks/FVC_RECIPE_RESULTS.md`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

PREPROCESSING = ("none", "local_contrast")
LOCAL_SIGMA = 8.0 / 192.0


def local_contrast(images: np.ndarray, sigma_fraction: float = LOCAL_SIGMA) -> np.ndarray:
  """Local zero-mean / unit-variance normalisation of each channel, mapped to [0, 1]."""
  x = np.asarray(images, np.float32)
  if x.ndim != 4:
    raise ValueError(f"local_contrast expects images [N, H, W, C], got shape {x.shape}")
  sigma = sigma_fraction * max(x.shape[1:3])
  window = (0, sigma, sigma, 0)  # smooth within each image and channel only
  mean = ndimage.gaussian_filter(x, window)
  var = ndimage.gaussian_filter(np.square(x - mean), window)
  return np.clip(0.5 + (x - mean) / np.sqrt(var + 1e-4) / 6.0, 0.0, 1.0).astype(np.float32)


def preprocess(images: np.ndarray, name: str) -> np.ndarray:
  """`images` after the fixed preprocessing `name` (one of `PREPROCESSING`)."""
  if name == "none":
    return images
  if name == "local_contrast":
    return local_contrast(images)
  raise ValueError(f"data.preprocess must be one of {PREPROCESSING}, got {name!r}")
