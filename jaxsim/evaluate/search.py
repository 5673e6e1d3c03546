"""Scores between embeddings at scale: matched pairs, tiled all-pairs, exact tiled top-k.

Convention used throughout `jaxsim.evaluate`: a *score* is a similarity, higher means
"more likely the same identity". Distances are therefore negated:

- ``"dot"``: ``<x, y>``.
- ``"cosine"``: ``<x, y> / (|x| |y|)`` (inputs are L2-normalised first).
- ``"euclidean"``: ``-|x - y|``.
- ``"squared_euclidean"``: ``-|x - y|^2``.

Everything here streams: pair scoring holds one chunk or tile at a time, and search
holds the gallery, one batch of queries with their running top k and one query chunk's
``[gallery_tile, query_chunk]`` score tile, so evaluating 166,800 pairs or searching
2,000 queries in a 100,000 x 256 gallery runs in bounded memory. Results come back as
NumPy arrays on the host.

`top_k` is the entry point for searching: ``backend="exact"`` runs `top_k_search`, and
``backend="faiss:<index factory string>"`` an approximate index (`jaxsim.evaluate.ann`,
an optional dependency) for galleries too large for exact search.

Ties in top-k: among equal scores the gallery item with the lower index ranks first
(the rule of `jax.lax.top_k`, kept exactly through the tiled merge), so results are
deterministic and equal to a stable sort of the full score matrix.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import distances, host_threads

METRICS = ("dot", "cosine", "euclidean", "squared_euclidean")

# Gallery blocks for the two-level top-k inside a tile: per-block maxima pick the
# (at most k) blocks that can hold the top k, then a small top-k runs over those.
_BLOCK = 64


def check_metric(metric: str) -> None:
  """Raise ValueError unless `metric` is one of `METRICS`."""
  if metric not in METRICS:
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")


def _check_2d(name: str, x: np.ndarray) -> None:
  if x.ndim != 2:
    raise ValueError(f"{name} must have shape [N, D], got shape {x.shape}")


def _normalize(x: jax.Array) -> jax.Array:
  # An all-zero embedding stays at zero instead of producing NaN.
  return distances.l2_normalize(x)


def pairwise_scores(x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, metric: str) -> jax.Array:
  """All-pairs scores in one shot (the untiled reference).

  Args:
    x: [N, D] embeddings.
    y: [M, D] embeddings.
    metric: one of `METRICS`; distances are negated so that higher = more similar.

  Returns:
    [N, M] float32 scores.
  """
  check_metric(metric)
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  if metric == "cosine":
    x, y = _normalize(x), _normalize(y)
  dots = jnp.matmul(x, y.T, precision="highest")
  if metric in ("dot", "cosine"):
    return dots
  sq = jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2 * dots
  # Rounding can make the expansion slightly negative; clip before the sqrt.
  sq = jnp.maximum(sq, 0.0)
  return -sq if metric == "squared_euclidean" else -jnp.sqrt(sq)


_pairwise_scores_jit = jax.jit(pairwise_scores, static_argnames=("metric",))


@functools.partial(jax.jit, static_argnames=("metric",))
def _matched_chunk(x: jax.Array, y: jax.Array, metric: str) -> jax.Array:
  if metric == "cosine":
    return distances.cosine_similarity(x, y)
  if metric == "dot":
    return jnp.sum(x * y, -1)
  # Differences, not the expansion, so a pair of identical vectors gives exactly 0.
  if metric == "squared_euclidean":
    return -distances.squared_euclidean_distance(x, y)
  return -distances.euclidean_distance(x, y)


def _chunks(n: int, size: int):
  for start in range(0, n, size):
    yield start, min(start + size, n)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  if x.shape[0] == rows:
    return x
  pad = np.zeros((rows - x.shape[0],) + x.shape[1:], x.dtype)
  return np.concatenate([x, pad])


def matched_scores(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, metric: str, chunk_size: int = 65536
) -> np.ndarray:
  """Scores of matched pairs (row i of x with row i of y), streamed in fixed-size chunks.

  Args:
    x: [N, D] embeddings (host or device).
    y: [N, D] embeddings.
    metric: one of `METRICS`.
    chunk_size: pairs per device call; the last chunk is padded so one compile serves all.

  Returns:
    [N] float32 scores (higher = more similar) as a NumPy array.
  """
  check_metric(metric)
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.float32)
  _check_2d("x", x)
  if x.shape != y.shape:
    raise ValueError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
  n = x.shape[0]
  size = min(chunk_size, max(n, 1))
  out = np.empty(n, np.float32)
  for start, stop in _chunks(n, size):
    xs = _pad_rows(x[start:stop], size)
    ys = _pad_rows(y[start:stop], size)
    out[start:stop] = np.asarray(_matched_chunk(xs, ys, metric))[: stop - start]
  return out


def tiled_pairwise_scores(
  x: jax.typing.ArrayLike, y: jax.typing.ArrayLike, metric: str, tile_size: int = 4096
) -> np.ndarray:
  """All-pairs scores computed tile by tile on the device and assembled on the host.

  Device memory holds one [tile_size, tile_size] tile at a time; the host holds the result.

  Args:
    x: [N, D] embeddings.
    y: [M, D] embeddings.
    metric: one of `METRICS`.
    tile_size: rows and columns per tile.

  Returns:
    [N, M] float32 NumPy array equal to `pairwise_scores(x, y, metric)`.
  """
  check_metric(metric)
  x = np.asarray(x, np.float32)
  y = np.asarray(y, np.float32)
  _check_2d("x", x)
  _check_2d("y", y)
  if x.shape[1] != y.shape[1]:
    raise ValueError(f"x and y must share the embedding dimension, got {x.shape} and {y.shape}")
  out = np.empty((x.shape[0], y.shape[0]), np.float32)
  tx = min(tile_size, max(x.shape[0], 1))
  ty = min(tile_size, max(y.shape[0], 1))
  for i0, i1 in _chunks(x.shape[0], tx):
    xs = _pad_rows(x[i0:i1], tx)
    for j0, j1 in _chunks(y.shape[0], ty):
      tile = _pairwise_scores_jit(xs, _pad_rows(y[j0:j1], ty), metric=metric)
      out[i0:i1, j0:j1] = np.asarray(tile)[: i1 - i0, : j1 - j0]
  return out


def _block_top_k(s: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Exact, stable top-k along the last axis via per-block maxima.

  A block that holds one of the k best elements has at most k - 1 blocks ranked above it
  by (max desc, block index asc), because each of those contributes its own maximum ahead
  of that element. So the top k blocks hold the top k elements, and a top-k over their
  k * _BLOCK entries (kept in gallery order, so ties still go to the lower index) finishes.
  """
  rows, width = s.shape
  num_blocks = width // _BLOCK
  if width % _BLOCK or num_blocks <= 2 * k:
    return jax.lax.top_k(s, k)
  blocks = s.reshape(rows, num_blocks, _BLOCK)
  _, best_blocks = jax.lax.top_k(blocks.max(-1), k)
  best_blocks = jnp.sort(best_blocks, axis=-1)
  cand = jnp.take_along_axis(blocks, best_blocks[..., None], axis=1).reshape(rows, k * _BLOCK)
  cand_idx = (best_blocks[..., None] * _BLOCK + jnp.arange(_BLOCK)).reshape(rows, k * _BLOCK)
  vals, pos = jax.lax.top_k(cand, k)
  return vals, jnp.take_along_axis(cand_idx, pos, axis=1)


# Up to this k, a tile's top k is found gallery-major ([W, R] scores, so every step is a
# reduction over the gallery axis that vectorises across queries, where XLA:CPU's
# `lax.top_k` sorts row by row) by a max tree (`_tree_candidates`) and max extraction
# (`_extract_top_k`). Larger k uses `_block_top_k`.
_SMALL_K = 16
_FAN = 8  # children per node of the max tree
_TREE_MIN = 128  # narrower tiles, per unit of k, are searched whole (`_tree_candidates`)
_NO_ID = np.iinfo(np.int32).max
# Queries per selection in `_merge_small_k`: a chunk's queries are scored and
# selected in independent parts, which XLA's thunk executor runs side by side (the
# selection's small reductions run on one thread each).
_PART = 128


def _extract_top_k(x: jax.Array, ids: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Top k along axis 0 of x [W, R] by (value desc, id asc), in k max-extraction passes.

  ``ids`` [W, R] must be distinct within a column wherever x is finite. A picked entry
  becomes -inf, so once fewer than k finite entries remain, picks repeat with value
  -inf: callers treat -inf picks as empty. Returns (values [k, R], ids [k, R]).
  """
  values, picked = [], []
  for _ in range(k):
    v = x.max(0)
    i = jnp.min(jnp.where(x == v[None], ids, _NO_ID), axis=0)
    x = jnp.where(ids == i[None], -jnp.inf, x)
    values.append(v)
    picked.append(i)
  return jnp.stack(values), jnp.stack(picked)


def _rows(shape: tuple[int, ...], start: int = 0) -> jax.Array:
  return start + jax.lax.broadcasted_iota(jnp.int32, shape, 0)


def _tree_candidates(s_t: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Entries of a gallery-major tile s_t [W, R] that hold each column's top k.

  A max tree: each node is the maximum of _FAN consecutive rows of the level below. A
  node that holds one of the k best entries (value desc, row asc) has at most k - 1
  nodes ranked above it by (maximum desc, node index asc), since each of those holds an
  entry ranked above that one. So the top k nodes of every level hold the top k
  entries, and the search descends from the top level keeping k nodes per level; no
  ranking happens on the tile itself. Returns (scores [n, R], rows [n, R]): the
  children of the k lowest-level nodes (n = _FAN * k) plus the last W % _FAN rows,
  which no node covers; or the whole tile when it is narrower than _TREE_MIN * k rows
  (too narrow for a tree to pay for its larger program).
  """
  width, cols = s_t.shape
  body = width - width % _FAN
  if width < _TREE_MIN * k:
    return s_t, _rows(s_t.shape)
  tile = s_t[:body]
  levels = [tile.reshape(-1, _FAN, cols).max(1)]
  while levels[-1].shape[0] % _FAN == 0 and levels[-1].shape[0] // _FAN >= 2 * k:
    levels.append(levels[-1].reshape(-1, _FAN, cols).max(1))
  # Else XLA folds the nested maxima into one more pass over the whole tile.
  levels = jax.lax.optimization_barrier(levels)
  v, nodes = _extract_top_k(levels[-1], _rows(levels[-1].shape), k)
  for level in reversed([tile, *levels[:-1]]):
    vals = jnp.take_along_axis(level.reshape(-1, _FAN, cols), nodes[:, None, :], axis=0)
    ids = nodes[:, None, :] * _FAN + jnp.arange(_FAN, dtype=jnp.int32)[None, :, None]
    # A node picked again with maximum -inf (see `_extract_top_k`) adds nothing.
    vals = jnp.where(jnp.isfinite(v)[:, None, :], vals, -jnp.inf)
    vals, ids = vals.reshape(k * _FAN, cols), ids.reshape(k * _FAN, cols)
    if level is tile:
      break
    v, nodes = _extract_top_k(vals, ids, k)
  if body < width:
    vals = jnp.concatenate([vals, s_t[body:]])
    ids = jnp.concatenate([ids, _rows(s_t[body:].shape, body)])
  return vals, ids


def _merge_small_k(best, q, q_ids, g_t, g_sq_t, g_ids_t, start, k, metric, exclude, id_repeats):
  """The running top k (gallery-major, [k, R] each) of a query chunk merged with one
  gallery tile that starts at gallery row ``start``, for k <= _SMALL_K.

  The chunk's queries are scored and selected in parts of _PART. An excluded item (the
  query's own id) can take a place in the tree: with at most ``id_repeats`` items per
  id, k + id_repeats nodes per level keep the top k of the rest, so the exclusion is
  applied to the candidates only; with more repeats than k, the tile is masked instead.
  """
  rows = q.shape[0]
  mask_tile = exclude and id_repeats > k
  tree_k = k + id_repeats if exclude and not mask_tile else k
  width = _PART if rows % _PART == 0 else rows
  merged = []
  for part in (slice(p, p + width) for p in range(0, rows, width)):
    s_t = jnp.matmul(g_t, q[part].T, precision="highest")
    if metric in ("euclidean", "squared_euclidean"):
      # |q - g|^2 = |q|^2 + |g|^2 - 2<q, g>; |q|^2 is constant per query, so rank on
      # the rest and convert the k winners back to distances at the end (`_finish`).
      s_t = 2 * s_t - g_sq_t[:, None]
    if mask_tile:
      s_t = jnp.where(g_ids_t[:, None] != q_ids[part][None, :], s_t, -jnp.inf)
    cand, cand_rows = _tree_candidates(s_t, tree_k)
    if exclude and not mask_tile:
      cand = jnp.where(g_ids_t[cand_rows] != q_ids[part][None, :], cand, -jnp.inf)
    all_s = jnp.concatenate([best[0][:, part], cand])
    all_i = jnp.concatenate([best[1][:, part], cand_rows + start])
    merged.append(_extract_top_k(all_s, all_i, k))
  return tuple(jnp.concatenate(x, axis=1) for x in zip(*merged, strict=True))


def _merge_large_k(best, q, q_ids, g_t, g_sq_t, g_ids_t, start, k, metric, exclude):
  """`_merge_small_k` for k > _SMALL_K: query-major tiles and `_block_top_k`."""
  s = jnp.matmul(q, g_t.T, precision="highest")
  if metric in ("euclidean", "squared_euclidean"):
    s = 2 * s - g_sq_t[None, :]  # as in `_merge_small_k`
  if exclude:
    s = jnp.where(g_ids_t[None, :] != q_ids[:, None], s, -jnp.inf)
  tile_s, tile_i = _block_top_k(s, min(k, s.shape[1]))
  # Earlier tiles (lower gallery indices) come first, so top_k's tie rule stays global.
  all_s = jnp.concatenate([best[0].T, tile_s], axis=1)
  all_i = jnp.concatenate([best[1].T, tile_i + start], axis=1)
  new_s, pos = jax.lax.top_k(all_s, k)
  return new_s.T, jnp.take_along_axis(all_i, pos, axis=1).T


@functools.partial(
  jax.jit,
  static_argnames=("k", "metric", "exclude", "chunk", "id_repeats"),
  donate_argnames="best",
)
def _search_tile(
  queries,
  query_ids,
  best,
  num_chunks,
  g_t,
  g_sq_t,
  g_ids_t,
  start,
  *,
  k,
  metric,
  exclude,
  chunk,
  id_repeats,
):
  """Merges one gallery tile into the running top k of every query ([k, Q] each): a loop
  over the first ``num_chunks`` query chunks of ``chunk`` rows (a traced count, so one
  compile serves every batch of the same padded size)."""

  def body(c, best):
    at = c * chunk
    q = jax.lax.dynamic_slice_in_dim(queries, at, chunk)
    if metric == "cosine":
      q = _normalize(q)  # again for every tile: cheaper than a program of its own
    q_ids = jax.lax.dynamic_slice_in_dim(query_ids, at, chunk)
    mine = tuple(jax.lax.dynamic_slice_in_dim(b, at, chunk, axis=1) for b in best)
    args = (mine, q, q_ids, g_t, g_sq_t, g_ids_t, start, k, metric, exclude)
    if k <= _SMALL_K:
      new = _merge_small_k(*args, id_repeats)
    else:
      new = _merge_large_k(*args)
    update = functools.partial(jax.lax.dynamic_update_slice_in_dim, start_index=at, axis=1)
    return tuple(update(b, n) for b, n in zip(best, new, strict=True))

  return jax.lax.fori_loop(0, num_chunks, body, best)


def _finish(q: np.ndarray, best_s: np.ndarray, best_i: np.ndarray, metric: str):
  """(scores [Q, k], indices [Q, k]) from the running top k ([k, Q] each), on the host:
  distances for the Euclidean metrics, index -1 wherever the score is -inf (fewer than
  k items to return)."""
  best_s, best_i = best_s.T, best_i.T
  if metric in ("euclidean", "squared_euclidean"):
    sq = np.maximum(np.einsum("ij,ij->i", q, q)[:, None] - best_s, np.float32(0))
    best_s = -sq if metric == "squared_euclidean" else -np.sqrt(sq)
  return best_s, np.where(np.isfinite(best_s), best_i, -1)


def _aligned_copy(x: np.ndarray) -> np.ndarray:
  """A private copy of `x` on 64-byte boundaries: XLA:CPU then uses it in place, where
  it would copy an unaligned array itself, at about a third of the speed."""
  buf = np.empty(x.nbytes + 64, np.uint8)
  offset = -buf.ctypes.data % 64
  out = buf[offset : offset + x.nbytes].view(x.dtype).reshape(x.shape)
  np.copyto(out, x)
  return out


@functools.partial(jax.jit, static_argnames="metric")
def _prepare_gallery(g: jax.Array, metric: str) -> tuple[jax.Array, jax.Array]:
  """(gallery as searched, squared norms for the Euclidean metrics), computed on the
  whole gallery, so equal rows stay equal in every tile; for "dot" the gallery is used
  as it is, without this program (which would copy it)."""
  g = _normalize(g) if metric == "cosine" else g
  return g, jnp.sum(g * g, -1) if metric in ("euclidean", "squared_euclidean") else g[:, 0]


# Queries on the device at once, in query chunks (their running top k stays there).
_QUERY_BATCH_CHUNKS = 128
# Searches of at least _THREADED_MACS multiply-adds split their query chunks among up to
# _SEARCH_THREADS host threads, each running its own chain of tile programs: on two cores
# 2,000 queries in 100,000 x 256 took 0.40-0.41 s against 0.43-0.45 s as one chain.
_THREADED_MACS = 2**31
_SEARCH_THREADS = 2


class ExactIndex:
  """A gallery prepared once for exact tiled search: split into tiles of
  ``gallery_tile`` rows (the last one narrower), copied to the device once, normalised
  (cosine), with squared norms (Euclidean) and ids.

  A search goes tile by tile (gallery-major), and within a tile over query chunks: each
  tile's scores for one query chunk are selected and merged into that chunk's running
  top k. The device holds the gallery, one batch of queries with their running top k,
  and one chunk's score tiles, so memory does not grow with the number of queries
  beyond their results. No tile overlaps another, so none is masked for that.

  Args:
    gallery: [N, D] embeddings; held on the device whole.
    metric: one of `METRICS`.
    gallery_ids: [N] int item ids, for searches that exclude a query's own item.
    gallery_tile: gallery items per tile.
  """

  def __init__(
    self,
    gallery: jax.typing.ArrayLike,
    metric: str = "cosine",
    gallery_ids: jax.typing.ArrayLike | None = None,
    gallery_tile: int = 8192,
  ):
    check_metric(metric)
    g = np.asarray(gallery, np.float32)
    _check_2d("gallery", g)
    num_g = g.shape[0]
    if num_g == 0:
      raise ValueError("the gallery is empty: pass at least one [D] embedding to search")
    if gallery_tile < 1:
      raise ValueError(f"gallery_tile must be >= 1, got {gallery_tile}")
    self.metric, self.size, self.dim = metric, num_g, g.shape[1]
    if gallery_ids is not None:
      gallery_ids = np.asarray(gallery_ids, np.int64).astype(np.int32)
      if gallery_ids.shape != (num_g,):
        raise ValueError(f"gallery_ids must be [{num_g}], got {gallery_ids.shape}")
    self.has_ids = gallery_ids is not None
    # The most items that share one id: how many a query can exclude.
    self.id_repeats = 0
    if self.has_ids:
      self.id_repeats = int(np.unique(gallery_ids, return_counts=True)[1].max())
    ids = np.zeros(num_g, np.int32) if gallery_ids is None else gallery_ids
    self.tile = min(gallery_tile, num_g)
    g_sq = np.zeros(num_g, np.float32)  # unused unless Euclidean
    if metric != "dot":
      g, g_sq = (np.asarray(x) for x in _prepare_gallery(g, metric))
    self.tiles = []  # (first gallery row, tile, squared norms, ids)
    for start, stop in _chunks(num_g, self.tile):
      # Each tile on its own aligned buffer, used in place (jnp.asarray would copy it).
      g_t = jax.device_put(_aligned_copy(g[start:stop]))
      self.tiles.append(
        (np.int32(start), g_t, jnp.asarray(g_sq[start:stop]), jnp.asarray(ids[start:stop]))
      )

  def search(
    self,
    queries: jax.typing.ArrayLike,
    k: int,
    query_ids: jax.typing.ArrayLike | None = None,
    query_chunk: int = 512,
  ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `queries` (see `top_k_search`); ``query_ids`` needs gallery ids."""
    q = np.asarray(queries, np.float32)
    _check_2d("queries", q)
    if q.shape[1] != self.dim:
      raise ValueError(f"queries and gallery must share the dimension: {q.shape} vs D={self.dim}")
    if k < 1:
      raise ValueError(f"k must be >= 1, got {k}")
    if query_chunk < 1:
      raise ValueError(f"query_chunk must be >= 1, got {query_chunk}")
    if (query_ids is None) != (not self.has_ids):
      raise ValueError("pass both query_ids and gallery_ids, or neither")
    num_q = q.shape[0]
    exclude = query_ids is not None
    if exclude:
      query_ids = np.asarray(query_ids, np.int64).astype(np.int32)
      if query_ids.shape != (num_q,):
        raise ValueError(f"query_ids must be [{num_q}], got {query_ids.shape}")
    else:
      query_ids = np.zeros(num_q, np.int32)
    chunk = min(query_chunk, max(num_q, 1))
    static = dict(k=k, metric=self.metric, exclude=exclude, chunk=chunk)
    static["id_repeats"] = self.id_repeats
    scores = np.empty((num_q, k), np.float32)
    indices = np.empty((num_q, k), np.int32)
    total_chunks = -(-num_q // chunk)
    threads = 1
    if total_chunks > 1 and num_q * self.size * self.dim >= _THREADED_MACS:
      threads = host_threads.usable(min(_SEARCH_THREADS, total_chunks))
    # Whole chunks per batch: the threads' shares, at most _QUERY_BATCH_CHUNKS each.
    per_batch = min(-(-total_chunks // threads), _QUERY_BATCH_CHUNKS)

    def search_batch(bounds):
      b0, b1 = bounds
      num_chunks = -(-(b1 - b0) // chunk)
      # Padded to a power of two of chunks: a few compiles serve every batch size.
      rows = chunk * 2 ** (num_chunks - 1).bit_length()
      batch = jnp.asarray(_pad_rows(q[b0:b1], rows))
      batch_ids = jnp.asarray(_pad_rows(query_ids[b0:b1], rows))
      # From NumPy: jnp.full would compile a program for each shape.
      best = (np.full((k, rows), -np.inf, np.float32), np.full((k, rows), -1, np.int32))
      for start, g_t, g_sq_t, g_ids_t in self.tiles:
        best = _search_tile(
          batch, batch_ids, best, np.int32(num_chunks), g_t, g_sq_t, g_ids_t, start, **static
        )
      best_s, best_i = (np.asarray(b)[:, : b1 - b0] for b in best)
      scores[b0:b1], indices[b0:b1] = _finish(q[b0:b1], best_s, best_i, self.metric)

    host_threads.map_in_order(search_batch, _chunks(num_q, chunk * per_batch), threads)
    return scores, indices


def top_k_search(
  queries: jax.typing.ArrayLike,
  gallery: jax.typing.ArrayLike,
  k: int,
  metric: str = "cosine",
  query_ids: jax.typing.ArrayLike | None = None,
  gallery_ids: jax.typing.ArrayLike | None = None,
  query_chunk: int = 512,
  gallery_tile: int = 8192,
) -> tuple[np.ndarray, np.ndarray]:
  """Exact top-k gallery items for each query, streamed over gallery tiles.

  A gallery item whose id equals the query's id is excluded (removal by identity of the
  item, not by rank position, so a duplicate image under another id is kept). With
  ``query_ids`` and ``gallery_ids`` both ``None`` nothing is excluded. To search one
  gallery many times, build an `ExactIndex` once.

  Args:
    queries: [Q, D] embeddings.
    gallery: [N, D] embeddings; held on the device whole.
    k: neighbours per query (may exceed N; missing slots get score -inf and index -1).
    metric: one of `METRICS`.
    query_ids: [Q] int item ids of the queries.
    gallery_ids: [N] int item ids of the gallery items.
    query_chunk: queries scored and selected together (the last chunk is padded).
    gallery_tile: gallery items per tile (the index splits the gallery into tiles).

  Returns:
    (scores [Q, k] float32, indices [Q, k] int32 into the gallery), best first; ties go
    to the lower gallery index.
  """
  # The cheap checks before the gallery goes to the device; the index checks the rest.
  if np.ndim(queries) == np.ndim(gallery) == 2 and np.shape(queries)[1] != np.shape(gallery)[1]:
    raise ValueError(
      f"queries and gallery must share the dimension: {np.shape(queries)} vs {np.shape(gallery)}"
    )
  if (query_ids is None) != (gallery_ids is None):
    raise ValueError("pass both query_ids and gallery_ids, or neither")
  index = ExactIndex(gallery, metric, gallery_ids, gallery_tile)
  return index.search(queries, k, query_ids, query_chunk)


def _is_exact(backend: str, params: str) -> bool:
  """Checks a backend and its params; True for ``"exact"``."""
  from jaxsim.evaluate import ann  # noqa: PLC0415 -- ann imports this module

  ann.check_backend(backend)
  if backend == "exact" and params:
    raise ValueError(f"search params {params!r} apply to a faiss backend, not 'exact'")
  return backend == "exact"


def top_k(
  queries: jax.typing.ArrayLike,
  gallery: jax.typing.ArrayLike,
  k: int,
  metric: str = "cosine",
  query_ids: jax.typing.ArrayLike | None = None,
  gallery_ids: jax.typing.ArrayLike | None = None,
  backend: str = "exact",
  params: str = "",
) -> tuple[np.ndarray, np.ndarray]:
  """Top-k gallery items per query, exact or from an approximate index.

  Args:
    queries, gallery, k, metric, query_ids, gallery_ids: as in `top_k_search`.
    backend: ``"exact"`` (`top_k_search`) or ``"faiss:<index factory string>"``, e.g.
      ``"faiss:HNSW32"`` or ``"faiss:IVF1024,Flat"`` (`jaxsim.evaluate.ann.FaissIndex`;
      the index is built on `gallery` for this call).
    params: faiss search parameters for an approximate backend, e.g. ``"efSearch=128"``
      or ``"nprobe=32"``; must be empty for ``"exact"``.

  Returns:
    (scores [Q, k] float32, indices [Q, k] int32), best first, as `top_k_search`.
  """
  from jaxsim.evaluate import ann  # noqa: PLC0415 -- ann imports this module

  if _is_exact(backend, params):
    return top_k_search(queries, gallery, k, metric, query_ids, gallery_ids)
  index = ann.FaissIndex(gallery, metric, backend, params)
  return index.search(queries, k, query_ids, gallery_ids)


def candidate_scores(
  queries: jax.typing.ArrayLike,
  gallery: jax.typing.ArrayLike,
  metric: str = "cosine",
  backend: str = "exact",
  params: str = "",
  k: int = 100,
) -> np.ndarray:
  """The [Q, N] score matrix that evaluations built on dense scores take.

  ``backend="exact"``: every score (`tiled_pairwise_scores`; `k` is unused). An
  approximate backend: each query's k candidates from the index (`top_k`) keep their
  scores and every other entry is -inf, so an item the index did not return ranks last.
  Ranks up to k, and metrics that only look that far, are then those of the index.
  """
  if _is_exact(backend, params):
    return tiled_pairwise_scores(queries, gallery, metric)
  num_g = np.shape(gallery)[0]
  s, i = top_k(queries, gallery, min(k, num_g), metric, backend=backend, params=params)
  out = np.full((s.shape[0], num_g), -np.inf, np.float32)
  rows = np.broadcast_to(np.arange(s.shape[0])[:, None], i.shape)
  found = i >= 0
  out[rows[found], i[found]] = s[found]
  return out
