"""Classical (non-deep) verification baselines with the interface of an embedding model.

A learned model earns its keep only if it beats what the field had before it. Each
baseline here is fitted on training identities, embeds images and scores pairs of
embeddings, so a task can put it beside a trained network on the same pairs::

  baseline = make_baseline("fisherfaces").fit(train_images, train_identities)
  scores = pair_scores(baseline, images, {"a": index_a, "b": index_b})

Images are float32 ``[N, H, W, C]`` in [0, 1] (``C`` = 1 or 3; colour is averaged to
grey), all of one size, as the real-data loaders in `jaxsim.data.sources.folders`
produce them. Scores follow the package convention: higher = more likely the same.

Faces:
- ``raw_pixels``: per-image standardised grey pixels, cosine similarity.
- ``eigenfaces``: PCA of the training images (Turk & Pentland 1991), cosine in PCA space.
- ``fisherfaces``: PCA to N - c dimensions, then LDA to at most c - 1 (Belhumeur,
  Hespanha & Kriegman 1997), cosine in LDA space.
- ``lbp``: grids of uniform local binary pattern histograms compared by the chi-square
  distance (Ahonen, Hadid & Pietikainen 2006).

Fingerprints:
- ``fingercode``: a FingerCode-style texture code (Jain, Prabhakar, Hong & Pankanti 2000)
  from a bank of oriented Gabor filters, with a Cartesian grid around the centre of the
  ridge area instead of the core point, and a few rotated copies of each image to
  tolerate rotation.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.linalg
from scipy import ndimage, signal
from skimage import feature, filters, transform
from sklearn import decomposition, discriminant_analysis

from jaxsim import host_threads

# Pairs are scored in chunks so that [pairs, D] temporaries stay small and in cache:
# 512 pairs of 5,184-pixel rows scored 166,800 pairs in 3.3 s against 9.4 s for 2,048
# (the same floats: every score is a row's own sum).
_PAIR_CHUNK = 512
_CHI_CHUNK = 256  # rows per step of `chi_square_distance`
# Cosine pair scores come from the Gram matrix of the images the pairs use when that has
# at most _GRAM_PAIRS entries per pair (`_cosine_pair_scores`), _GRAM_ROWS rows at a time.
_GRAM_PAIRS = 16
_GRAM_ROWS = 512
# Other scores of at least _THREADED_PAIRS pairs are computed on up to _PAIR_THREADS
# threads (`jaxsim.host_threads`): `Baseline.score` must be a pure function.
_PAIR_THREADS = 4
_THREADED_PAIRS = 20_000

# The last PCA computed (`_pca`), keyed by its training matrix's shape and bytes, and
# the last training images' standardised pixels (`_Fitted._standardised_pixels`).
_PCA_CACHE: dict[tuple, decomposition.PCA] = {}
_PIXELS_CACHE: dict[tuple, np.ndarray] = {}
# A PCA of at most _LEADING components of a matrix with at least _LEADING_MIN rows and
# columns computes only the _LEADING leading components (`_leading_pca`). Eigenfaces
# keeps at most 100 and Fisherfaces' validation grid at most 80.
_LEADING = 128
_LEADING_MIN = 4 * _LEADING


def _digest(x: np.ndarray) -> tuple:
  """A cache key of an array: shape, dtype and a hash of its bytes."""
  return (x.shape, x.dtype.str, hashlib.blake2b(np.ascontiguousarray(x), digest_size=16).digest())


def _pca(x: np.ndarray, num_components: int) -> decomposition.PCA:
  """A fitted sklearn PCA of `x` [N, D] with `num_components` components.

  Eigenfaces and each of Fisherfaces' validation candidates fit a PCA of the same
  standardised training pixels, so the last matrix's decomposition is kept and a PCA of
  any size is its leading components (sklearn computes all of them and truncates; the
  signs are fixed per component). On a small matrix, or for more than _LEADING
  components, that decomposition is sklearn's exact one (`svd_solver="full"`, the same
  numbers bit for bit). On a large matrix, only the _LEADING leading components are
  computed (`_leading_pca`: 7 s against 36 s for face_verify's 5,376 x 5,184 training
  pixels on 2 cores; the same components to about 1e-14). `noise_variance_`, which
  `transform` does not use, is only kept right for the size computed.
  """
  key = _digest(x)
  fitted = _PCA_CACHE.get(key)
  if fitted is None or fitted.n_components_ < num_components:
    if num_components <= _LEADING and min(x.shape) >= _LEADING_MIN:
      fitted = _leading_pca(x, _LEADING)
    else:
      fitted = decomposition.PCA(n_components=min(x.shape), svd_solver="full").fit(x)
    _PCA_CACHE.clear()  # one matrix at a time: the components are D x min(N, D) floats
    _PCA_CACHE[key] = fitted
  pca = copy.copy(fitted)
  pca.n_components = pca.n_components_ = num_components
  for name in (
    "components_",
    "explained_variance_",
    "explained_variance_ratio_",
    "singular_values_",
  ):
    setattr(pca, name, getattr(fitted, name)[:num_components])
  return pca


def _leading_pca(x: np.ndarray, k: int) -> decomposition.PCA:
  """sklearn's PCA of `x` [N, D] truncated to its k leading components, without a full SVD.

  The top k eigenpairs of the smaller of the Gram matrix Xc Xc^T and the covariance
  Xc^T Xc (Xc: the centred rows) give the singular values and right singular vectors
  (a component is Xc^T u / s for a Gram eigenvector u). The signs follow sklearn's
  `svd_flip(u_based_decision=False)`: each component's largest entry is positive. The
  explained-variance ratios divide by the total variance |Xc|_F^2 / (N - 1), which is
  the sum of all eigenvalues. Squaring costs relative accuracy only in components far
  below the first; for faces (5,376 x 5,184 standardised pixels) the 128 components
  agree with the full SVD's to 1.4e-14 and the variances to 1e-13 (relative).
  """
  n, d = x.shape
  mean = x.mean(axis=0)
  xc = x - mean
  small = min(n, d)
  gram = xc @ xc.T if n <= d else xc.T @ xc
  eigenvalues, vectors = scipy.linalg.eigh(gram, subset_by_index=[small - k, small - 1])
  eigenvalues, vectors = np.maximum(eigenvalues[::-1], 0.0), vectors[:, ::-1]
  singular = np.sqrt(eigenvalues)
  if n <= d:
    components = (vectors.T @ xc) / np.where(singular > 0, singular, 1.0)[:, None]
  else:
    components = np.ascontiguousarray(vectors.T)
  signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
  components *= np.where(signs == 0, 1.0, signs)[:, None]
  variance = eigenvalues / (n - 1)
  total = np.einsum("ij,ij->", xc, xc) / (n - 1)
  pca = decomposition.PCA(n_components=k)
  pca.mean_, pca.components_ = mean, components
  pca.n_components_, pca.n_samples_, pca.n_features_in_ = k, n, d
  pca.explained_variance_, pca.singular_values_ = variance, singular
  pca.explained_variance_ratio_ = variance / total
  pca.noise_variance_ = max(total - variance.sum(), 0.0) / max(small - k, 1)
  return pca


@runtime_checkable
class Baseline(Protocol):
  """What every baseline offers: fit on training identities, embed, score pairs."""

  name: str

  def fit(self, images: np.ndarray, identities: np.ndarray) -> Baseline: ...

  def embed(self, images: np.ndarray) -> np.ndarray: ...

  def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    """[P] scores of row pairs (higher = same); a pure function, as `pair_scores` may
    call it from several threads at once."""
    ...


# ---------------------------------------------------------------------------
# Input checks and shared helpers


def _check_images(images, what: str = "images", min_count: int = 1) -> np.ndarray:
  """float64 [N, H, W] grey images from float [N, H, W, C] in [0, 1], or a clear error."""
  if isinstance(images, list | tuple):
    shapes = sorted({np.shape(x) for x in images})
    if len(shapes) > 1:
      raise ValueError(
        f"{what} have mixed sizes {shapes[:4]}{' ...' if len(shapes) > 4 else ''}; resize "
        "them to one size first (e.g. the loader's image_size option)"
      )
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(
      f"{what} must be an array [N, H, W, C] with C = 1 or 3, got shape {images.shape}; "
      "add a channel axis with images[..., None] for greyscale"
    )
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(
      f"{what} must be floats in [0, 1], got dtype {images.dtype}; divide 8-bit images by 255"
    )
  if images.shape[0] < min_count:
    raise ValueError(f"need at least {min_count} {what}, got {images.shape[0]}")
  if not np.all(np.isfinite(images)):
    raise ValueError(f"{what} contain NaN or inf")
  if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
    raise ValueError(
      f"{what} must lie in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]; "
      "divide 8-bit images by 255"
    )
  # The channel mean in float64 without a float64 copy of the images (0.75 s against 4.4 s
  # with the copy for face_verify's 7,680 RGB 72x72 images); the same numbers bit for bit.
  return images.mean(axis=-1, dtype=np.float64)


def _check_identities(identities, num_images: int) -> np.ndarray:
  identities = np.asarray(identities).reshape(-1)
  if identities.size != num_images:
    raise ValueError(
      f"got {num_images} images but {identities.size} identities; give one identity per image"
    )
  return identities


def _standardise(x: np.ndarray) -> np.ndarray:
  """Zero mean, unit variance per row; a constant row stays zero instead of dividing by 0."""
  x = x - x.mean(axis=1, keepdims=True)
  std = x.std(axis=1, keepdims=True)
  return x / np.where(std > 0, std, 1.0)


def cosine_similarity(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
  """Row-wise cosine similarity of [N, D] arrays; a zero row has similarity 0."""
  a, b = _check_pair_embeddings(emb_a, emb_b)
  norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
  return np.einsum("nd,nd->n", a, b) / np.where(norms > 0, norms, 1.0)


def chi_square_distance(hist_a: np.ndarray, hist_b: np.ndarray) -> np.ndarray:
  """Row-wise chi-square distance sum_i (a_i - b_i)^2 / (a_i + b_i) of [N, D] histograms.

  Bins empty in both histograms contribute 0 (0/0 is taken as 0). Rows are processed in
  chunks of _CHI_CHUNK, in place, so the temporaries stay in cache (1.7-2.1x faster than
  chunks of 2,048 rows with a temporary per operation, for the same floats).

  Reference: Ahonen, Hadid & Pietikainen 2006, IEEE TPAMI 28(12), eq. 6 (unweighted).
  """
  a, b = _check_pair_embeddings(hist_a, hist_b)
  out = np.empty(a.shape[0])
  for start in range(0, a.shape[0], _CHI_CHUNK):
    x, y = a[start : start + _CHI_CHUNK], b[start : start + _CHI_CHUNK]
    diff, total = np.subtract(x, y), np.add(x, y)
    np.square(diff, out=diff)
    np.copyto(total, 1.0, where=~(total > 0))
    np.divide(diff, total, out=diff)
    out[start : start + _CHI_CHUNK] = diff.sum(axis=1)
  return out


def _check_pair_embeddings(emb_a, emb_b) -> tuple[np.ndarray, np.ndarray]:
  a, b = np.asarray(emb_a, np.float64), np.asarray(emb_b, np.float64)
  if a.ndim != 2 or a.shape != b.shape:
    raise ValueError(
      f"emb_a and emb_b must both be [N, D] with equal shapes, got {a.shape} and {b.shape}"
    )
  return a, b


class _Fitted:
  """Shared bookkeeping: fit records the image size; embed checks it and that fit ran."""

  name = "baseline"
  _image_shape: tuple[int, int] | None = None

  def _fit_images(self, images, identities) -> tuple[np.ndarray, np.ndarray]:
    grey = _check_images(images, "training images", min_count=2)
    ids = _check_identities(identities, grey.shape[0])
    self._image_shape = grey.shape[1:]
    return grey, ids

  def _standardised_pixels(self, images, identities) -> tuple[np.ndarray, np.ndarray]:
    """`_fit_images`, as standardised grey pixels [N, H * W] (read-only) and identities.

    Eigenfaces and every Fisherfaces candidate fit on the same training images, so the
    last images' pixels are kept, keyed by their bytes (face_verify: 5,376 images, about
    2 s of conversion per fit).
    """
    images = np.asarray(images)
    key = _digest(images)
    x = _PIXELS_CACHE.get(key)
    if x is None:
      grey, ids = self._fit_images(images, identities)
      x = _standardise(grey.reshape(grey.shape[0], -1))
      x.flags.writeable = False
      _PIXELS_CACHE.clear()  # one set of images at a time
      _PIXELS_CACHE[key] = x
      return x, ids
    self._image_shape = images.shape[1:3]  # images passed `_fit_images` when cached
    return x, _check_identities(identities, x.shape[0])

  def _embed_images(self, images) -> np.ndarray:
    if self._image_shape is None:
      raise RuntimeError(
        f"{self.name}: call fit(train_images, train_identities) before embed; "
        "the baseline has not been fitted"
      )
    grey = _check_images(images)
    if grey.shape[1:] != self._image_shape:
      raise ValueError(
        f"{self.name}: images are {grey.shape[1:]} but the baseline was fitted on "
        f"{self._image_shape}; resize them to the training size"
      )
    return grey

  def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    return cosine_similarity(emb_a, emb_b)

  def __repr__(self) -> str:
    state = "unfitted" if self._image_shape is None else f"fitted on {self._image_shape}"
    return f"{type(self).__name__}({state})"


# ---------------------------------------------------------------------------
# Faces


class RawPixels(_Fitted):
  """Grey pixels standardised per image (zero mean, unit variance); cosine similarity.

  Nothing is learned: fit only records the image size (and checks the input), so every
  baseline is used the same way.
  """

  name = "raw_pixels"

  def fit(self, images, identities) -> RawPixels:
    self._fit_images(images, identities)
    return self

  def embed(self, images) -> np.ndarray:
    grey = self._embed_images(images)
    return _standardise(grey.reshape(grey.shape[0], -1))


class Eigenfaces(_Fitted):
  """PCA of the standardised training pixels; cosine similarity in PCA space.

  Args:
    variance: keep the fewest leading components that explain this fraction of the
      training variance (default 0.95) ...
    max_components: ... but at most this many (default 100) and at most N - 1.

  Reference: Turk & Pentland 1991, "Eigenfaces for recognition", J. Cognitive
  Neuroscience 3(1).
  """

  name = "eigenfaces"

  def __init__(self, variance: float = 0.95, max_components: int = 100):
    if not 0 < variance <= 1:
      raise ValueError(f"variance must be in (0, 1], got {variance}")
    self.variance, self.max_components = variance, max_components
    self.pca: decomposition.PCA | None = None
    self.num_components = 0

  def fit(self, images, identities) -> Eigenfaces:
    x, _ = self._standardised_pixels(images, identities)
    cap = min(self.max_components, x.shape[0] - 1, x.shape[1])
    self.pca = _pca(x, cap)
    explained = np.cumsum(self.pca.explained_variance_ratio_)
    self.num_components = int(min(cap, np.searchsorted(explained, self.variance - 1e-12) + 1))
    return self

  def embed(self, images) -> np.ndarray:
    grey = self._embed_images(images)
    x = self.pca.transform(_standardise(grey.reshape(grey.shape[0], -1)))
    return x[:, : self.num_components]


class Fisherfaces(_Fitted):
  """PCA to N - c dimensions, then LDA to at most c - 1; cosine similarity in LDA space.

  N training images of c identities: PCA to N - c dimensions makes the within-class
  scatter non-singular, and LDA then finds the directions that separate identities
  relative to the variation within each identity (lighting, expression), which PCA
  alone keeps. Fitted on the training identities only.

  Args:
    num_components: LDA dimensions (default c - 1, the most LDA gives).
    pca_components: cap on the PCA dimensions (default None: the paper's N - c). With
      N - c, LDA also uses the weakest PCA directions, where the within-identity scatter
      of the training images is tiny by chance; that overfits when the test identities
      are new (ORL, 20 training people, new test people: AUC 0.82 against 0.96 with 40;
      `benchmarks/baselines_real.py` picks it on validation).

  Reference: Belhumeur, Hespanha & Kriegman 1997, "Eigenfaces vs. Fisherfaces", IEEE
  TPAMI 19(7), sec. 2.3.
  """

  name = "fisherfaces"

  def __init__(self, num_components: int | None = None, pca_components: int | None = None):
    self.num_components = num_components
    self.pca_components = pca_components
    self.pca: decomposition.PCA | None = None
    self.lda: discriminant_analysis.LinearDiscriminantAnalysis | None = None

  def fit(self, images, identities) -> Fisherfaces:
    x, ids = self._standardised_pixels(images, identities)
    classes = np.unique(ids)
    n, c = x.shape[0], classes.size
    if c < 2:
      raise ValueError(
        f"fisherfaces: LDA needs training images of at least 2 identities, got {c}; "
        "fit on more identities (or use eigenfaces, which needs no labels)"
      )
    if n - c < 1:
      raise ValueError(
        f"fisherfaces: every one of the {c} training identities has a single image, so there "
        "is no within-identity variation to learn from; give some identities 2+ images"
      )
    pca_dims = min(n - c, x.shape[1])
    if self.pca_components is not None:
      pca_dims = min(pca_dims, self.pca_components)
    lda_dims = min(c - 1, pca_dims)
    if self.num_components is not None:
      lda_dims = min(lda_dims, self.num_components)
    self.pca = _pca(x, pca_dims)
    self.lda = discriminant_analysis.LinearDiscriminantAnalysis(n_components=lda_dims)
    self.lda.fit(self.pca.transform(x), ids)
    return self

  def embed(self, images) -> np.ndarray:
    grey = self._embed_images(images)
    x = _standardise(grey.reshape(grey.shape[0], -1))
    return self.lda.transform(self.pca.transform(x))


class LBPHistograms(_Fitted):
  """Concatenated local binary pattern histograms over a grid of cells; chi-square distance.

  Codes by `skimage.feature.local_binary_pattern` on the 8-bit grey image; the outer
  ``radius`` pixels are dropped (their neighbours fall outside the image). Each cell's
  histogram is normalised to sum 1, so cells of unequal size weigh the same. The score
  is the negative chi-square distance.

  Args:
    points, radius: LBP neighbourhood (default P = 8, R = 1).
    method: "nri_uniform" (default; the 59-bin u2 codes of Ahonen et al.) or "uniform"
      (P + 2 rotation-invariant bins).
    grid: cells (rows, columns), default 7 x 7 as in the paper.

  Reference: Ahonen, Hadid & Pietikainen 2006, "Face description with local binary
  patterns", IEEE TPAMI 28(12).
  """

  name = "lbp"

  def __init__(
    self,
    points: int = 8,
    radius: float = 1,
    method: str = "nri_uniform",
    grid: tuple[int, int] = (7, 7),
  ):
    if method not in ("nri_uniform", "uniform"):
      raise ValueError(f"method must be 'nri_uniform' or 'uniform', got {method!r}")
    self.points, self.radius, self.method, self.grid = points, radius, method, tuple(grid)
    self.num_bins = points * (points - 1) + 3 if method == "nri_uniform" else points + 2

  def fit(self, images, identities) -> LBPHistograms:
    grey, _ = self._fit_images(images, identities)
    margin = int(np.ceil(self.radius))
    rows, cols = grey.shape[1] - 2 * margin, grey.shape[2] - 2 * margin
    if rows < self.grid[0] or cols < self.grid[1]:
      raise ValueError(
        f"lbp: images of {grey.shape[1:]} are too small for a {self.grid} grid; use a "
        "smaller grid or larger images"
      )
    return self

  def codes(self, grey: np.ndarray) -> np.ndarray:
    """LBP codes [H - 2m, W - 2m] of one grey image in [0, 1] (m = ceil(radius))."""
    # 8-bit input: on floats, tiny differences between equal-looking pixels flip bits.
    img = np.round(np.clip(grey, 0, 1) * 255).astype(np.uint8)
    codes = feature.local_binary_pattern(img, self.points, self.radius, self.method)
    m = int(np.ceil(self.radius))
    return codes[m : codes.shape[0] - m, m : codes.shape[1] - m].astype(np.int64)

  def embed(self, images) -> np.ndarray:
    grey = self._embed_images(images)
    out = []
    for image in grey:
      codes = self.codes(image)
      row_edges = np.linspace(0, codes.shape[0], self.grid[0] + 1).round().astype(int)
      col_edges = np.linspace(0, codes.shape[1], self.grid[1] + 1).round().astype(int)
      cell_row = np.searchsorted(row_edges, np.arange(codes.shape[0]), side="right") - 1
      cell_col = np.searchsorted(col_edges, np.arange(codes.shape[1]), side="right") - 1
      cell = cell_row[:, None] * self.grid[1] + cell_col[None, :]
      num_cells = self.grid[0] * self.grid[1]
      hist = np.bincount(
        (cell * self.num_bins + codes).reshape(-1), minlength=num_cells * self.num_bins
      ).reshape(num_cells, self.num_bins)
      out.append((hist / hist.sum(axis=1, keepdims=True)).reshape(-1))
    return np.stack(out)

  def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    return -chi_square_distance(emb_a, emb_b)


# ---------------------------------------------------------------------------
# Fingerprints


class FingerCode(_Fitted):
  """A FingerCode-style Gabor texture code, Euclidean distance, best of a few rotations.

  Each image is normalised locally (zero mean and unit variance within a Gaussian window
  of ``smooth`` pixels, as ridge enhancement does), filtered by ``num_orientations``
  even-symmetric Gabor filters tuned to the ridge frequency (`skimage.filters.
  gabor_kernel`), and each filtered image is summarised by the average absolute
  deviation from its mean in every cell of a ``grid``. The feature vector (orientations
  x cells) is standardised per image.

  Simplification: true FingerCode tessellates concentric sectors around the detected
  core point and handles rotation by cyclic shifts of the sectors. Here the grid is
  Cartesian, covering ``extent`` of the image around the centre of mass of the ridge
  area (the foreground: high local variance), and rotation is handled by embedding
  copies of each image rotated by ``rotations`` degrees; a pair's score is the best
  (max over rotations of either image against the unrotated other) negative Euclidean
  distance. No core detection, no minutiae.

  Args:
    frequency: ridge frequency in cycles per pixel at the working image size. Default
      0.1: on FVC2002 DB1-3 B resized to 192 x 192, validation AUC was 0.78 at 0.1,
      0.77 at 0.12 and 0.14 (two seeds); it matters little.
    num_orientations: Gabor orientations over [0, pi) (default 8, as in the paper).
    grid: cells (rows, columns) of the code.
    extent: fraction of the image side the grid covers.
    rotations: rotation angles in degrees of the extra copies (0 is always included).
    smooth: Gaussian sigma in pixels of the local normalisation.

  Reference: Jain, Prabhakar, Hong & Pankanti 2000, "Filterbank-based fingerprint
  matching", IEEE Trans. Image Processing 9(5).
  """

  name = "fingercode"

  def __init__(
    self,
    frequency: float = 0.1,
    num_orientations: int = 8,
    grid: tuple[int, int] = (8, 8),
    extent: float = 0.7,
    rotations: Sequence[float] = (-20.0, -10.0, 10.0, 20.0),
    smooth: float = 8.0,
  ):
    if not 0 < frequency < 0.5:
      raise ValueError(f"frequency must be in (0, 0.5) cycles per pixel, got {frequency}")
    if not 0 < extent <= 1:
      raise ValueError(f"extent must be in (0, 1], got {extent}")
    self.frequency, self.num_orientations = frequency, num_orientations
    self.grid, self.extent, self.smooth = tuple(grid), extent, smooth
    self.rotations = (0.0,) + tuple(float(r) for r in rotations if r != 0)
    self.kernels = [
      np.real(filters.gabor_kernel(frequency, theta=k * np.pi / num_orientations))
      for k in range(num_orientations)
    ]

  def fit(self, images, identities) -> FingerCode:
    grey, _ = self._fit_images(images, identities)
    if min(grey.shape[1:]) * self.extent < 2 * max(self.grid):
      raise ValueError(
        f"fingercode: images of {grey.shape[1:]} are too small for a {self.grid} grid; "
        "use larger images or a smaller grid"
      )
    return self

  def _normalise(self, grey: np.ndarray) -> np.ndarray:
    """Local zero mean and unit variance per image [N, H, W] (a ridge-contrast equaliser)."""
    sigma = (0, self.smooth, self.smooth)
    mean = ndimage.gaussian_filter(grey, sigma)
    var = ndimage.gaussian_filter(np.square(grey - mean), sigma)
    # The floor keeps flat background from being blown up to unit-variance noise.
    return (grey - mean) / np.sqrt(var + 1e-4)

  def _code(self, grey: np.ndarray) -> np.ndarray:
    """[N, orientations * cells] standardised codes of grey images [N, H, W]."""
    n, h, w = grey.shape
    norm = self._normalise(grey)
    # Foreground = local contrast well above the background's; its centre of mass
    # stands in for the core point.
    sigma = (0, self.smooth, self.smooth)
    contrast = ndimage.gaussian_filter(
      np.square(grey - ndimage.gaussian_filter(grey, sigma)), sigma
    )
    fg = contrast > 0.25 * contrast.reshape(n, -1).max(axis=1)[:, None, None]
    rr, cc = np.mgrid[0:h, 0:w]
    mass = np.maximum(fg.sum(axis=(1, 2)), 1)
    centre_r = np.where(fg.any((1, 2)), (fg * rr).sum((1, 2)) / mass, h / 2)
    centre_c = np.where(fg.any((1, 2)), (fg * cc).sum((1, 2)) / mass, w / 2)
    half_r, half_c = h * self.extent / 2, w * self.extent / 2
    # Cell index of every pixel relative to each image's centre (-1 = outside the grid).
    rel_r = (rr[None] - (centre_r[:, None, None] - half_r)) / (2 * half_r) * self.grid[0]
    rel_c = (cc[None] - (centre_c[:, None, None] - half_c)) / (2 * half_c) * self.grid[1]
    inside = (rel_r >= 0) & (rel_r < self.grid[0]) & (rel_c >= 0) & (rel_c < self.grid[1])
    num_cells = self.grid[0] * self.grid[1]
    cell = np.where(inside, rel_r.astype(int) * self.grid[1] + rel_c.astype(int), num_cells)
    cell = cell + (np.arange(n) * (num_cells + 1))[:, None, None]
    counts_all = np.bincount(cell.reshape(-1), minlength=n * (num_cells + 1))
    counts = np.maximum(counts_all.reshape(n, num_cells + 1)[:, :num_cells], 1)
    flat_cell = cell.reshape(-1)
    features = []
    for kernel in self.kernels:
      response = signal.fftconvolve(norm, kernel[None], mode="same", axes=(1, 2))
      total = np.bincount(flat_cell, response.reshape(-1), n * (num_cells + 1))
      cell_mean = total / np.maximum(counts_all, 1)
      dev = np.abs(response.reshape(-1) - cell_mean[flat_cell])
      aad = np.bincount(flat_cell, dev, n * (num_cells + 1)).reshape(n, num_cells + 1)
      features.append(aad[:, :num_cells] / counts)
    return _standardise(np.concatenate(features, axis=1))

  def embed(self, images) -> np.ndarray:
    """[N, R * D]: the codes of the image rotated by each angle, unrotated first."""
    grey = self._embed_images(images)
    codes = []
    for angle in self.rotations:
      if angle == 0:
        rotated = grey
      else:
        rotated = np.stack(
          [transform.rotate(g, angle, mode="edge", preserve_range=True) for g in grey]
        )
      codes.append(self._code(rotated))
    return np.concatenate(codes, axis=1)

  def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    a, b = _check_pair_embeddings(emb_a, emb_b)
    r = len(self.rotations)
    if a.shape[1] % r:
      raise ValueError(f"fingercode embeddings must have {r} rotation blocks, got D={a.shape[1]}")
    a = a.reshape(a.shape[0], r, -1)
    b = b.reshape(b.shape[0], r, -1)
    # Either side rotated against the other unrotated: symmetric in a and b.
    d_ab = np.linalg.norm(a - b[:, :1], axis=2).min(axis=1)
    d_ba = np.linalg.norm(b - a[:, :1], axis=2).min(axis=1)
    return -np.minimum(d_ab, d_ba)


# ---------------------------------------------------------------------------
# Registry and pair scoring

_BASELINES = {
  "raw_pixels": RawPixels,
  "eigenfaces": Eigenfaces,
  "fisherfaces": Fisherfaces,
  "lbp": LBPHistograms,
  "fingercode": FingerCode,
}
FACE_BASELINES = ("raw_pixels", "eigenfaces", "fisherfaces", "lbp")
FINGERPRINT_BASELINES = ("raw_pixels", "eigenfaces", "fisherfaces", "lbp", "fingercode")


def make_baseline(name: str, **options) -> Baseline:
  """A new, unfitted baseline by name (`FACE_BASELINES`, `FINGERPRINT_BASELINES`)."""
  if name not in _BASELINES:
    raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(_BASELINES)}")
  return _BASELINES[name](**options)


def pair_scores(
  baseline: Baseline, images: np.ndarray, pairs: Mapping[str, np.ndarray]
) -> np.ndarray:
  """Scores [P] of image pairs, embedding each image the pairs use once.

  Args:
    baseline: a fitted baseline.
    images: float32 [N, H, W, C] in [0, 1].
    pairs: ``{"a": [P], "b": [P]}`` indices into ``images`` (other keys, e.g. ``label``,
      are ignored).

  Returns:
    [P] similarities, higher = more likely the same identity.
  """
  a, b = np.asarray(pairs["a"]).reshape(-1), np.asarray(pairs["b"]).reshape(-1)
  if a.shape != b.shape:
    raise ValueError(f"pairs 'a' and 'b' must have equal length, got {a.size} and {b.size}")
  if a.size == 0:
    return np.zeros(0)
  n = len(images)
  if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n:
    raise ValueError(f"pair indices must lie in [0, {n}) for {n} images")
  used, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
  emb = baseline.embed(np.asarray(images)[used])
  ia, ib = inverse[: a.size], inverse[a.size :]
  if type(baseline).score is _Fitted.score and used.size**2 <= _GRAM_PAIRS * a.size:
    return _cosine_pair_scores(emb, ia, ib)

  # In chunks of pairs: gathering [P, D] float64 rows for 166,800 pairs of 4,096-pixel
  # embeddings at once took a face_verify run to 22 GB. Long lists take the chunks on
  # threads (NumPy releases the GIL; each chunk's scores are its own).
  def score(start: int) -> np.ndarray:
    chunk = slice(start, start + _PAIR_CHUNK)
    return np.asarray(baseline.score(emb[ia[chunk]], emb[ib[chunk]]))

  threads = host_threads.usable(_PAIR_THREADS) if a.size >= _THREADED_PAIRS else 1
  return np.concatenate(host_threads.map_in_order(score, range(0, a.size, _PAIR_CHUNK), threads))


# Options tried on validation (the first listed wins ties). Fisherfaces' N - c PCA
# dimensions overfit when test identities are new (ORL: test AUC 0.818 against 0.959
# with the PCA size chosen on validation, `benchmarks/baselines_real.py`).
VALIDATION_GRIDS: dict[str, tuple[dict, ...]] = {
  "fisherfaces": tuple({"pca_components": k} for k in (20, 40, 80)),
}


def fit_on_validation(
  name: str,
  images: np.ndarray,
  identities: np.ndarray,
  train_records: np.ndarray,
  val_pairs: Mapping[str, np.ndarray],
  candidates: Sequence[Mapping] | None = None,
) -> tuple[Baseline, dict, float]:
  """Fits `name` on the training records once per candidate option set; keeps the best.

  The candidates (default `VALIDATION_GRIDS.get(name, ({},))`) are scored by AUC on the
  validation pairs; test data choose nothing.

  Returns:
    (fitted baseline, its options, its validation AUC).
  """
  images = np.asarray(images)
  train = _training_set(images, identities, train_records)
  return _fit_on_validation(name, train, images, val_pairs, candidates)[:3]


def _training_set(images: np.ndarray, identities, train_records) -> tuple[np.ndarray, np.ndarray]:
  """(images, identities) of the training records, gathered once for every fit."""
  train = np.asarray(train_records)
  return images[train], np.asarray(identities)[train]


def _fit_on_validation(name, train, images, val_pairs, candidates=None):
  """`fit_on_validation` on `train` = (images, identities), plus the chosen baseline's
  scores of `val_pairs` (indices into `images`)."""
  from jaxsim.evaluate import verification  # noqa: PLC0415 -- evaluate imports no baselines

  best = None
  for options in candidates or VALIDATION_GRIDS.get(name, ({},)):
    model = make_baseline(name, **options).fit(*train)
    scores = pair_scores(model, images, val_pairs)
    auc = verification.roc_auc(scores, val_pairs["label"])
    if best is None or auc > best[2]:
      best = (model, dict(options), auc, scores)
  return best


def baseline_report(
  names: Sequence[str],
  images: np.ndarray,
  identities: np.ndarray,
  train_records: np.ndarray,
  val_pairs: Mapping[str, np.ndarray],
  test_pairs: Mapping[str, np.ndarray],
  num_resamples: int = 1000,
  seed: int = 0,
  test_scores: dict[str, np.ndarray] | None = None,
  val_scores: dict[str, np.ndarray] | None = None,
) -> dict[str, dict]:
  """Each baseline fitted on training identities (options chosen on validation), on test.

  A dict passed as `test_scores` receives each baseline's scores of `test_pairs` (for
  `compare_with_best`, without fitting the baselines again); one passed as `val_scores`,
  its scores of `val_pairs` (to fuse it with a learned matcher on validation).

  Returns:
    ``{name: {"val_auc", "options", "auc", "auc_ci_low", ..., "eer", ...}}``: test AUC and
    EER with 95% intervals by a bootstrap over test identities (`clustered`).
  """
  from jaxsim.evaluate import clustered  # noqa: PLC0415

  images, ids = np.asarray(images), np.asarray(identities)
  train = _training_set(images, ids, train_records)
  out = {}
  for name in names:
    model, options, val_auc, on_val = _fit_on_validation(name, train, images, val_pairs)
    scores = pair_scores(model, images, test_pairs)
    if test_scores is not None:
      test_scores[name] = scores
    if val_scores is not None:
      val_scores[name] = on_val
    out[name] = {
      "val_auc": val_auc,
      "options": options,
      **clustered.subject_bootstrap(
        clustered.verification_statistic(scores, test_pairs["label"]),
        ids[test_pairs["a"]],
        ids[test_pairs["b"]],
        num_resamples=num_resamples,
        seed=seed,
      ),
    }
  return out


def compare_with_best(
  baseline_rows: Mapping[str, Mapping],
  baseline_test_scores: Mapping[str, np.ndarray],
  identities: np.ndarray,
  test_pairs: Mapping[str, np.ndarray],
  test_scores: Mapping[str, np.ndarray],
  num_resamples: int = 1000,
  seed: int = 0,
) -> dict:
  """Each learned matcher's test AUC minus that of the baseline best on validation.

  `baseline_rows` and `baseline_test_scores` come from `baseline_report` (the winner is
  the highest ``val_auc``); `test_scores` maps a matcher's name to its scores of the same
  `test_pairs`. Intervals come from a paired bootstrap over test identities
  (`clustered.auc_difference_statistic`): one identity draw weights both matchers.

  Returns:
    ``{"baseline": name, "rows": {matcher: {auc_a, auc_b, auc_difference, ..._ci_low,
    ..._ci_high, num_subjects, num_resamples}}}``.
  """
  from jaxsim.evaluate import clustered  # noqa: PLC0415

  best = max(baseline_rows, key=lambda k: baseline_rows[k]["val_auc"])
  reference, ids = baseline_test_scores[best], np.asarray(identities)
  rows = {
    name: clustered.subject_bootstrap(
      clustered.auc_difference_statistic(scores, reference, test_pairs["label"]),
      ids[test_pairs["a"]],
      ids[test_pairs["b"]],
      num_resamples=num_resamples,
      seed=seed,
    )
    for name, scores in test_scores.items()
  }
  return {"baseline": best, "rows": rows}


def fuse_with_best(
  baseline_rows: Mapping[str, Mapping],
  baseline_scores: Mapping[str, Mapping[str, np.ndarray]],
  learned_scores: Mapping[str, np.ndarray],
  identities: np.ndarray,
  val_pairs: Mapping[str, np.ndarray],
  seed: int = 0,
) -> tuple[str, dict]:
  """The learned matcher fused with the baseline best on validation, where validation
  says it helps (`fusion.learned_plus_baseline`: weight chosen on validation pairs,
  the decision cross-fitted over validation subjects).

  Args:
    baseline_rows: `baseline_report` rows (the best has the highest ``val_auc``).
    baseline_scores: ``{split: {baseline: scores}}`` with "val" and the splits to fuse.
    learned_scores: ``{split: scores}`` of the learned matcher, same splits and pairs.
    identities: identity of each image; `val_pairs` indexes them.

  Returns:
    (the baseline's name, `learned_plus_baseline`'s dict with ``scores`` per split).
  """
  from jaxsim.evaluate import fusion  # noqa: PLC0415 -- evaluate imports no baselines

  best = max(baseline_rows, key=lambda k: baseline_rows[k]["val_auc"])
  stacked = {s: np.stack([learned_scores[s], baseline_scores[s][best]], 1) for s in learned_scores}
  ids = np.asarray(identities)
  val = stacked.pop("val")
  out = fusion.learned_plus_baseline(
    val,
    val_pairs["label"],
    (ids[val_pairs["a"]], ids[val_pairs["b"]]),
    stacked,
    seed=seed,
  )
  return best, out


def baseline_sentence(
  reports: Mapping[str, Mapping[str, Mapping]], what: str = "test pairs"
) -> str:
  """One sentence naming each baseline's test AUC and 95% interval (`baseline_report` rows).

  Args:
    reports: ``{group: baseline_report(...)}``, e.g. ``{"face": ..., "fingerprint": ...}``;
      a single group named "" is written without its name.
    what: what the baselines were scored on.
  """
  parts = []
  for group, rows in reports.items():
    aucs = ", ".join(
      f"{n} {r['auc']:.3f} ({r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f})" for n, r in rows.items()
    )
    parts.append(f"{group}: {aucs}" if group else aucs)
  return (
    f"Classical baselines on the same {what} (fitted on the training identities, options "
    "chosen on validation; test AUC, 95% CI over test identities): " + "; ".join(parts) + "."
  )


def _cosine_pair_scores(emb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
  """`cosine_similarity(emb[ia], emb[ib])` from row blocks of the Gram matrix of the unit
  rows of `emb` [U, D]: one matrix product per block instead of gathering [P, D] rows
  (face_verify's 166,800 pairs of 1,152 raw-pixel rows of 5,184: 0.2 s against 3.3 s).
  The scores agree with the row-wise formula to rounding (about 1e-16); a zero row
  scores 0, as there."""
  emb = np.asarray(emb, np.float64)
  norms = np.linalg.norm(emb, axis=1)
  unit = emb / np.where(norms > 0, norms, 1.0)[:, None]
  order = np.argsort(ia, kind="stable")
  starts = range(0, len(unit), _GRAM_ROWS)
  bounds = np.searchsorted(ia[order], [*starts, len(unit)])
  out = np.empty(ia.size)
  for start, lo, hi in zip(starts, bounds[:-1], bounds[1:], strict=True):
    if lo < hi:
      picked = order[lo:hi]
      block = unit[start : start + _GRAM_ROWS] @ unit.T
      out[picked] = block[ia[picked] - start, ib[picked]]
  return out


def score_matrix(baseline: Baseline, emb_q: np.ndarray, emb_g: np.ndarray) -> np.ndarray:
  """[Q, G] scores of every query embedding against every gallery embedding (`baseline.score`)."""
  emb_q, emb_g = np.asarray(emb_q), np.asarray(emb_g)
  rows = max(1, _PAIR_CHUNK // max(1, len(emb_g)))  # queries per chunk: bounded memory
  out = []
  for start in range(0, len(emb_q), rows):
    block = emb_q[start : start + rows]
    q = np.repeat(np.arange(len(block)), len(emb_g))
    g = np.tile(np.arange(len(emb_g)), len(block))
    out.append(np.asarray(baseline.score(block[q], emb_g[g])).reshape(len(block), len(emb_g)))
  return np.concatenate(out) if out else np.zeros((0, len(emb_g)))


def _centroid_scores(model, images, identities, gallery, probe_sets) -> tuple[list, np.ndarray]:
  """Probe-by-identity scores against each enrolled identity's mean gallery embedding."""
  cols = np.unique(identities[gallery])
  emb_g = model.embed(images[gallery])
  templates = np.stack([emb_g[identities[gallery] == c].mean(0) for c in cols])
  return [score_matrix(model, model.embed(images[p]), templates) for p in probe_sets], cols


def identification_report(
  names: Sequence[str],
  images: np.ndarray,
  identities: np.ndarray,
  train_records: np.ndarray,
  gallery: np.ndarray,
  probes: Mapping[str, np.ndarray],
  target_fpir: float,
  num_resamples: int = 1000,
  seed: int = 0,
) -> dict[str, dict]:
  """Each baseline as an open-set identifier: enrolled centroids, validation threshold, test.

  Fitted on the training identities; options (`VALIDATION_GRIDS`) chosen by validation
  DIR at `target_fpir`; then the same protocol as a learned encoder
  (`evaluate.openset.identification_report`): threshold at `target_fpir` on validation
  outsiders, test FPIR / DIR / CMC with 95% intervals over test probe identities.

  Args:
    gallery: the enrolled identities' gallery records.
    probes: ``{"val": records, "test": records}``, mated and non-mated probes together.

  Returns:
    ``{name: {"options", "val_dir", "threshold", "fpir", "dir", "cmc_rank_1", ... with
    ``_ci_low`` / ``_ci_high``}}``.
  """
  from jaxsim.evaluate import openset  # noqa: PLC0415 -- evaluate imports no baselines

  images, ids = np.asarray(images), np.asarray(identities)
  pid = {k: ids[v] for k, v in probes.items()}
  out = {}
  for name in names:
    best = None
    for options in VALIDATION_GRIDS.get(name, ({},)):
      model = make_baseline(name, **options).fit(images[train_records], ids[train_records])
      (sv,), cols = _centroid_scores(model, images, ids, gallery, (probes["val"],))
      val = openset.fnir_at_fpir(sv, cols, pid["val"], fpirs=(target_fpir,))
      val_dir = val[f"dir_at_fpir_{target_fpir:.0e}"]
      if best is None or val_dir > best[1]:
        best = (dict(options), val_dir, sv, model)
    options, val_dir, sv, model = best
    # Test probes are scored once, by the option validation chose.
    (st,), cols = _centroid_scores(model, images, ids, gallery, (probes["test"],))
    r = openset.identification_report(
      sv,
      pid["val"],
      st,
      pid["test"],
      cols,
      target_fpir=target_fpir,
      num_resamples=num_resamples,
      seed=seed,
      cosine=False,
    )
    boot = r["test"]["intervals"]
    keep = [k for k in boot if k.split("_ci_")[0] in ("fpir", "dir", "cmc_rank_1")]
    out[name] = {
      "options": options,
      "val_dir": val_dir,
      "threshold": r["test"]["at_val_threshold"]["threshold"],
      **{k: boot[k] for k in keep},
    }
  return out


def identification_sentence(rows: Mapping[str, Mapping], target_fpir: float) -> str:
  """`identification_report` rows in one sentence: test DIR and FPIR with 95% intervals."""
  parts = [
    f"{n} DIR {r['dir']:.3f} ({r['dir_ci_low']:.3f}-{r['dir_ci_high']:.3f}) at FPIR "
    f"{r['fpir']:.3f}, CMC rank 1 {r['cmc_rank_1']:.3f}"
    for n, r in rows.items()
  ]
  return (
    "Classical baselines as open-set identifiers on the same gallery and probes (fitted on "
    f"the training identities, options and a threshold for FPIR <= {target_fpir:g} chosen "
    "on validation; 95% CI over test probe identities): " + "; ".join(parts) + "."
  )


def _partner_ranks(scores: np.ndarray) -> np.ndarray:
  """Rank of each row's partner (the diagonal) among its row; ties count against it."""
  partner = np.diag(scores)[:, None]
  return 1 + np.sum((scores >= partner) & ~np.eye(len(scores), dtype=bool), axis=1)


def partner_retrieval_report(
  names: Sequence[str],
  left: np.ndarray,
  right: np.ndarray,
  identities: np.ndarray,
  records: Mapping[str, np.ndarray],
  num_resamples: int = 1000,
  seed: int = 0,
) -> dict[str, dict]:
  """Each baseline retrieving each left image's right partner (one relevant item per query).

  Fitted on the training pairs (left and right images of a pair share its identity);
  options (`VALIDATION_GRIDS`) chosen by validation R@1; on test the partner metrics of
  `evaluate.retrieval.partner_metrics` with 95% intervals over query identities.

  Returns:
    ``{name: {"options", "val_recall_at_1", "recall_at_1", ..., "mrr", with _ci_low /
    _ci_high}}``.
  """
  from jaxsim.evaluate import retrieval  # noqa: PLC0415 -- evaluate imports no baselines

  ids = np.asarray(identities)
  train = records["train"]
  images = np.concatenate([left[train], right[train]])
  out = {}
  for name in names:
    best = None
    for options in VALIDATION_GRIDS.get(name, ({},)):
      model = make_baseline(name, **options).fit(images, np.r_[ids[train], ids[train]])
      val = records["val"]
      s = score_matrix(model, model.embed(left[val]), model.embed(right[val]))
      r1 = float(np.mean(_partner_ranks(s) == 1))
      if best is None or r1 > best[2]:
        best = (model, dict(options), r1)
    model, options, val_r1 = best
    test = records["test"]
    s = score_matrix(model, model.embed(left[test]), model.embed(right[test]))
    boot = retrieval.partner_rank_intervals(_partner_ranks(s), ids[test], num_resamples, seed)
    out[name] = {"options": options, "val_recall_at_1": val_r1, **boot}
  return out


def seed_summary_sentence(rows: Mapping[str, Mapping], keys: Sequence[str], what: str) -> str:
  """Baselines summarised over seeds (`evaluate.seeds.summary` rows): mean +- std per key."""
  parts = [
    f"{n} " + ", ".join(f"{k} {r[k + '_mean']:.3f} +- {r[k + '_std']:.3f}" for k in keys)
    for n, r in rows.items()
  ]
  return (
    f"Classical baselines on {what} (fitted on the training identities, options chosen on "
    "validation; mean +- std over seeds): " + "; ".join(parts) + "."
  )
