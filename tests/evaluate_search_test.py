"""Streamed scores and tiled top-k equal the one-shot computation."""

import numpy as np
import pytest

from jaxsim.evaluate import search


def _data(seed, n, m, d):
  rng = np.random.default_rng(seed)
  return (
    rng.standard_normal((n, d)).astype(np.float32),
    rng.standard_normal((m, d)).astype(np.float32),
  )


def _stable_top_k(scores, k):
  idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return np.take_along_axis(scores, idx, 1), idx


@pytest.mark.parametrize("metric", search.METRICS)
def test_tiled_top_k_equals_untiled(metric):
  q, g = _data(0, 37, 3000, 8)
  full = np.asarray(search.pairwise_scores(q, g, metric))
  ref_s, ref_i = _stable_top_k(full, 7)
  # Chunk and tile sizes that leave remainders; the 1024-wide tile uses the block top-k path.
  s, i = search.top_k_search(q, g, 7, metric, query_chunk=16, gallery_tile=1024)
  np.testing.assert_array_equal(i, ref_i)
  np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)


def test_ties_go_to_lower_gallery_index_across_tiles():
  rng = np.random.default_rng(1)
  base = rng.standard_normal((5, 4)).astype(np.float32)
  g = np.tile(base, (300, 1))  # every row repeated 300 times, across tile borders
  q = base[:2]
  s, i = search.top_k_search(q, g, 6, "dot", gallery_tile=256)
  full = np.asarray(search.pairwise_scores(q, g, "dot"))
  np.testing.assert_array_equal(i, _stable_top_k(full, 6)[1])
  np.testing.assert_array_equal(i[0], [0, 5, 10, 15, 20, 25])


@pytest.mark.parametrize("k", [1, 5, 16, 17, 40])
def test_both_selection_paths_equal_a_stable_sort(k):
  # k <= 16 selects gallery-major by a max tree and max extraction; k > 16 uses
  # lax.top_k over block maxima. Duplicated rows make ties inside and across tiles.
  rng = np.random.default_rng(7)
  base = rng.standard_normal((700, 6)).astype(np.float32)
  # 2,048 rows: two whole tiles of 1,024 (the remainder tile has tests of its own).
  g = np.concatenate([base, base[::-1], base[:648]])
  q = rng.standard_normal((9, 6)).astype(np.float32)
  for metric in ("dot", "squared_euclidean"):
    full = np.asarray(search.pairwise_scores(q, g, metric))
    ref_s, ref_i = _stable_top_k(full, k)
    s, i = search.top_k_search(q, g, k, metric, query_chunk=4, gallery_tile=1024)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)
  # Excluding all but a few items per query leaves -inf slots, each reported as -1 once.
  q_ids = np.full(9, 3)  # every query excludes all but the 4 items with other ids
  g_ids = np.where(np.arange(g.shape[0]) % 500 == 0, 100 + np.arange(g.shape[0]), 3)
  s, i = search.top_k_search(q, g, k, "dot", q_ids, g_ids, gallery_tile=1024)
  full = np.array(search.pairwise_scores(q, g, "dot"))
  full[:, g_ids == 3] = -np.inf
  ref_s, ref_i = _stable_top_k(full, k)
  ref_i = np.where(np.isfinite(ref_s), ref_i, -1)
  np.testing.assert_array_equal(i, ref_i)
  assert all(len(set(r[r >= 0])) == np.sum(r >= 0) for r in i)


@pytest.mark.parametrize("k", [2, 20])
def test_the_last_tile_counts_each_item_once(k):
  # 1,500 items in tiles of 256: k > 16 scans an overlapping last tile from 1,244, inside
  # the fifth tile (1,024-1,279), so items 1,244-1,279 are scanned twice and must be
  # counted once; k <= 16 scans a 220-item remainder after the five whole tiles.
  q, g = _data(8, 2, 1500, 6)
  g[1250], g[1270] = 50 * q[0], 40 * q[1]
  for metric in ("dot", "cosine"):
    s, i = search.top_k_search(q, g, k, metric, gallery_tile=256)
    ref_s, ref_i = _stable_top_k(np.asarray(search.pairwise_scores(q, g, metric)), k)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)
    assert i[0, 0] == 1250 and i[1, 0] == 1270
    assert all(len(set(row)) == k for row in i)


@pytest.mark.parametrize("repeats", [1, 3])
def test_exclusion_through_the_max_tree_equals_a_stable_sort(repeats):
  # Leave-one-out search (each query is a gallery item) with ids shared by `repeats`
  # items: the tree keeps k + repeats nodes per level and excludes at the candidates. A
  # remainder of 2,501 - 2 * 1,024 = 453 rows is not a multiple of 8 (tail rows unreduced).
  rng = np.random.default_rng(11)
  g = rng.standard_normal((2501, 6)).astype(np.float32)
  g[1:40] = g[0]  # ties that cross the excluded items
  g_ids = np.arange(2501) // repeats
  pick = np.array([0, 5, 1030, 2047, 2048, 2500] + list(range(100, 400, 7)))
  q, q_ids = g[pick], g_ids[pick]
  for metric in ("dot", "squared_euclidean"):
    full = np.array(search.pairwise_scores(q, g, metric))
    full[q_ids[:, None] == g_ids[None, :]] = -np.inf
    ref_s, ref_i = _stable_top_k(full, 9)
    s, i = search.top_k_search(q, g, 9, metric, q_ids, g_ids, query_chunk=16, gallery_tile=1024)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)


def test_queries_selected_in_parts_equal_a_stable_sort():
  # A chunk of 256 queries is scored and selected in parts of `search._PART` queries.
  q, g = _data(12, 300, 5000, 16)
  ref_s, ref_i = _stable_top_k(np.asarray(search.pairwise_scores(q, g, "cosine")), 10)
  s, i = search.top_k_search(q, g, 10, "cosine", query_chunk=256, gallery_tile=2048)
  np.testing.assert_array_equal(i, ref_i)
  np.testing.assert_allclose(s, ref_s, rtol=1e-5, atol=1e-5)


def test_query_chunks_split_among_threads_equal_one_chain(monkeypatch):
  # Large searches split their query chunks among host threads (each thread its own
  # chain of tile programs): 5 chunks of 16 become 3 + 2, padded differently.
  q, g = _data(13, 70, 3000, 8)
  g_ids = np.arange(3000) // 2
  q_ids = g_ids[::43][:70]
  index = search.ExactIndex(g, "squared_euclidean", g_ids, gallery_tile=1024)
  monkeypatch.setattr(search, "_THREADED_MACS", np.inf)
  one = index.search(q, 9, q_ids, query_chunk=16)
  used = []
  map_in_order = search.host_threads.map_in_order

  def recording(fn, items, threads):
    used.append(threads)
    return map_in_order(fn, items, threads)

  monkeypatch.setattr(search, "_THREADED_MACS", 0)
  monkeypatch.setattr(search.host_threads, "usable", lambda limit: limit)
  monkeypatch.setattr(search.host_threads, "map_in_order", recording)
  two = index.search(q, 9, q_ids, query_chunk=16)
  assert used == [2]
  for a, b in zip(one, two, strict=True):
    np.testing.assert_array_equal(a, b)


def test_exclusion_is_by_id_not_position():
  g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], np.float32)  # item 1 duplicates item 0
  ids = np.array([10, 11, 12])
  s, i = search.top_k_search(g, g, 2, "dot", query_ids=ids, gallery_ids=ids)
  np.testing.assert_array_equal(i, [[1, 2], [0, 2], [0, 1]])
  np.testing.assert_allclose(s[:, 0], [1.0, 1.0, 0.0])


def test_k_larger_than_gallery_pads_with_minus_one():
  q, g = _data(2, 3, 4, 5)
  s, i = search.top_k_search(q, g, 6, "euclidean")
  assert np.all(i[:, 4:] == -1) and np.all(np.isneginf(s[:, 4:]))
  assert sorted(i[0, :4].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("metric", search.METRICS)
def test_tiled_pairwise_and_matched_scores(metric):
  x, y = _data(3, 50, 70, 6)
  full = np.asarray(search.pairwise_scores(x, y, metric))
  np.testing.assert_allclose(
    search.tiled_pairwise_scores(x, y, metric, tile_size=16), full, rtol=1e-5, atol=1e-5
  )
  matched = search.matched_scores(x, y[:50], metric, chunk_size=16)
  np.testing.assert_allclose(matched, np.diag(full[:, :50]), rtol=1e-4, atol=1e-4)


def test_matched_euclidean_of_identical_vectors_is_exactly_zero():
  x, _ = _data(4, 10, 1, 16)
  assert np.all(search.matched_scores(x, x, "euclidean") == 0.0)


def test_bad_input_raises():
  q, g = _data(5, 3, 4, 5)
  with pytest.raises(ValueError, match="metric"):
    search.top_k_search(q, g, 2, "manhattan")
  with pytest.raises(ValueError, match="dimension"):
    search.top_k_search(q, g[:, :3], 2)
  with pytest.raises(ValueError, match="both"):
    search.top_k_search(q, g, 2, query_ids=np.arange(3))
  with pytest.raises(ValueError, match="gallery is empty"):
    search.ExactIndex(np.zeros((0, 5), np.float32))
