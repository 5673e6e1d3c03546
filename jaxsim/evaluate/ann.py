"""Approximate top-k search for large galleries, on faiss (Johnson, Douze & Jegou 2019).

Exact search (`search.top_k_search`) scores every query against every gallery item; past
a few million items an index that visits a fraction of the gallery is the practical
choice. This module wraps faiss rather than re-implementing one: a backend is named by a
faiss *index factory* string, the library's own notation, and tuned by a faiss
*parameter string*:

- ``"faiss:HNSW32"``: a navigable small-world graph (Malkov & Yashunin 2018) with 32 links
  per node; raise ``efSearch`` (e.g. ``"efSearch=128"``) for recall, at the cost of speed.
- ``"faiss:IVF1024,Flat"``: 1,024 k-means cells, each searched exhaustively; the cells are
  trained on the gallery (a sample of at most 256 points per cell). ``"nprobe=32"`` sets
  how many cells a query visits.
- ``"faiss:Flat"``: exact search on faiss's BLAS path (a reference, not an index).

faiss is an optional dependency: ``pip install -e '.[ann]'``.

Scores follow `jaxsim.evaluate.search`: similarities, higher = more similar. ``cosine``
L2-normalises both sides and uses inner products; ``euclidean`` and
``squared_euclidean`` use faiss's squared L2 distances, negated (and square-rooted).
Differences from exact search: results are approximate (measure recall against
``search.top_k_search``, as `benchmarks/retrieval.py` does), ties are ordered as faiss
returns them, and an HNSW graph built on several threads can differ between runs.
"""

from __future__ import annotations

import numpy as np

from jaxsim import distances

PREFIX = "faiss:"
INSTALL_HINT = "pip install -e '.[ann]' (the faiss-cpu package)"


def is_approximate(backend: str) -> bool:
  """Whether `backend` names a faiss index (``"faiss:<factory string>"``)."""
  return backend.startswith(PREFIX)


def check_backend(backend: str) -> None:
  """Raise ValueError unless `backend` is ``"exact"`` or ``"faiss:<factory string>"``."""
  if backend == "exact" or (is_approximate(backend) and backend[len(PREFIX) :].strip()):
    return
  raise ValueError(
    f"search backend must be 'exact' or 'faiss:<index factory string>' (for example "
    f"'faiss:HNSW32' or 'faiss:IVF1024,Flat'), got {backend!r}"
  )


def _faiss():
  try:
    import faiss  # noqa: PLC0415 -- optional dependency, imported on use
  except ImportError as e:
    raise ImportError(f"approximate search needs faiss: {INSTALL_HINT}") from e
  return faiss


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
  x = np.asarray(x, np.float32)
  if metric == "cosine":
    # As `distances.l2_normalize`, in NumPy: a million rows need no trip to the device.
    norm = np.sqrt(np.sum(np.square(x), axis=1, keepdims=True))
    x = x / np.maximum(norm, distances.NORM_EPS)
  return np.ascontiguousarray(x)


class FaissIndex:
  """A faiss index over a fixed gallery, searched like `search.top_k_search`.

  Args:
    gallery: [N, D] embeddings.
    metric: one of `search.METRICS`.
    backend: ``"faiss:<index factory string>"``, e.g. ``"faiss:HNSW32"``.
    params: faiss parameter string applied after building, e.g. ``"efSearch=128"`` or
      ``"nprobe=32"``; empty for the index's defaults.
    seed: seed of the k-means that trains IVF cells (faiss's own default is fixed too).
  """

  def __init__(
    self, gallery: np.typing.ArrayLike, metric: str, backend: str, params: str = "", seed=0
  ):
    from jaxsim.evaluate import search  # noqa: PLC0415 -- search imports this module lazily

    search.check_metric(metric)
    check_backend(backend)
    if not is_approximate(backend):
      raise ValueError(f"FaissIndex needs a 'faiss:...' backend, got {backend!r}")
    faiss = _faiss()
    g = _prepare(np.asarray(gallery), metric)
    if g.ndim != 2 or g.shape[0] == 0:
      raise ValueError(f"gallery must have shape [N, D] with N >= 1, got {g.shape}")
    self.metric, self.backend, self.params = metric, backend, params
    self.size, self.dim = g.shape
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric in ("dot", "cosine") else faiss.METRIC_L2
    factory = backend[len(PREFIX) :]
    try:
      self.index = faiss.index_factory(self.dim, factory, faiss_metric)
    except RuntimeError as e:
      raise ValueError(
        f"faiss cannot build index {factory!r} (from search backend {backend!r}); see "
        "faiss's index factory strings, e.g. 'HNSW32', 'IVF1024,Flat'"
      ) from e
    if not self.index.is_trained:
      ivf = faiss.extract_index_ivf(self.index) if "IVF" in factory else None
      if ivf is not None:
        if ivf.nlist > self.size:
          raise ValueError(
            f"search backend {backend!r} asks for {ivf.nlist} IVF cells but the gallery has "
            f"{self.size} items; use at most about N / 39 cells"
          )
        ivf.cp.seed = seed
      self.index.train(g)
    self.index.add(g)
    if params:
      try:
        faiss.ParameterSpace().set_index_parameters(self.index, params)
      except RuntimeError as e:
        raise ValueError(
          f"faiss cannot apply search params {params!r} to index {factory!r} (HNSW takes "
          "'efSearch=N', IVF takes 'nprobe=N')"
        ) from e

  def search(
    self,
    queries: np.typing.ArrayLike,
    k: int,
    query_ids: np.typing.ArrayLike | None = None,
    gallery_ids: np.typing.ArrayLike | None = None,
  ) -> tuple[np.ndarray, np.ndarray]:
    """Approximate top-k; the same contract as `search.top_k_search`.

    A gallery item whose id equals the query's id is excluded: the index is asked for
    k + (the most gallery items any query id names) neighbours, the excluded ones are
    dropped, and the first k remain.

    Returns:
      (scores [Q, k] float32, indices [Q, k] int32), best first; missing slots (k larger
      than what the index returns) get score -inf and index -1.
    """
    q = _prepare(np.asarray(queries), self.metric)
    if q.ndim != 2 or q.shape[1] != self.dim:
      raise ValueError(f"queries must have shape [Q, {self.dim}], got {q.shape}")
    if k < 1:
      raise ValueError(f"k must be >= 1, got {k}")
    if (query_ids is None) != (gallery_ids is None):
      raise ValueError("pass both query_ids and gallery_ids, or neither")
    extra = 0
    if query_ids is not None:
      query_ids = np.asarray(query_ids).reshape(-1)
      gallery_ids = np.asarray(gallery_ids).reshape(-1)
      if query_ids.size != q.shape[0] or gallery_ids.size != self.size:
        raise ValueError(
          f"query_ids must be [{q.shape[0]}] and gallery_ids [{self.size}], got "
          f"{query_ids.shape} and {gallery_ids.shape}"
        )
      ids, counts = np.unique(gallery_ids, return_counts=True)
      extra = int(counts[np.isin(ids, query_ids)].max(initial=0))
    search_k = min(k + extra, self.size)
    dist, idx = self.index.search(q, search_k)
    idx = idx.astype(np.int64)
    keep = idx >= 0
    if query_ids is not None:
      keep &= gallery_ids[np.maximum(idx, 0)] != query_ids[:, None]
    # Stable compaction: kept neighbours first, in faiss's order.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(np.where(keep, idx, -1), order, axis=1)
    dist = np.take_along_axis(dist, order, axis=1).astype(np.float32)
    if self.metric in ("dot", "cosine"):
      scores = dist
    elif self.metric == "squared_euclidean":
      scores = -np.maximum(dist, 0.0)
    else:
      scores = -np.sqrt(np.maximum(dist, 0.0))
    scores = np.where(idx >= 0, scores, -np.inf).astype(np.float32)
    out_s = np.full((q.shape[0], k), -np.inf, np.float32)
    out_i = np.full((q.shape[0], k), -1, np.int32)
    out_s[:, : idx.shape[1]] = scores
    out_i[:, : idx.shape[1]] = idx
    return out_s, out_i
