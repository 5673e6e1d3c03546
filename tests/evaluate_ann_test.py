"""The faiss backend of `search.top_k`: same contract as exact search, clear errors.

Skips (with the reason) where the `ann` extra is not installed; CI installs it.
"""

import builtins
import importlib.util

import numpy as np
import pytest

from jaxsim.evaluate import ann, search


def _data(seed, n, m, d):
  rng = np.random.default_rng(seed)
  return (
    rng.standard_normal((n, d)).astype(np.float32),
    rng.standard_normal((m, d)).astype(np.float32),
  )


def test_check_backend_names_the_forms():
  ann.check_backend("exact")
  ann.check_backend("faiss:HNSW32")
  for bad in ("faiss", "faiss:", "hnsw", ""):
    with pytest.raises(ValueError, match="faiss:<index factory string>"):
      ann.check_backend(bad)


def test_missing_faiss_says_how_to_install(monkeypatch):
  real_import = builtins.__import__

  def no_faiss(name, *args, **kwargs):
    if name == "faiss":
      raise ImportError("No module named 'faiss'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_faiss)
  q, g = _data(0, 3, 20, 4)
  with pytest.raises(ImportError, match=r"\.\[ann\]"):
    search.top_k(q, g, 2, backend="faiss:Flat")


def test_exact_backend_rejects_faiss_params():
  q, g = _data(0, 3, 20, 4)
  with pytest.raises(ValueError, match="efSearch"):
    search.top_k(q, g, 2, backend="exact", params="efSearch=16")


needs_faiss = pytest.mark.skipif(
  importlib.util.find_spec("faiss") is None,
  reason="the ann extra (faiss-cpu) is not installed: pip install -e '.[ann]'",
)


@needs_faiss
@pytest.mark.parametrize("metric", search.METRICS)
@pytest.mark.parametrize("backend", ["faiss:Flat", "faiss:HNSW16", "faiss:IVF8,Flat"])
def test_faiss_backends_equal_exact_search_when_searching_everything(metric, backend):
  q, g = _data(1, 20, 400, 8)
  # Settings that make each index exhaustive on 400 items: the results must be exact.
  params = {"faiss:Flat": "", "faiss:HNSW16": "efSearch=400", "faiss:IVF8,Flat": "nprobe=8"}
  ref_s, ref_i = search.top_k_search(q, g, 5, metric)
  s, i = search.top_k(q, g, 5, metric, backend=backend, params=params[backend])
  np.testing.assert_array_equal(i, ref_i)
  np.testing.assert_allclose(s, ref_s, rtol=1e-4, atol=1e-4)


@needs_faiss
def test_faiss_exclusion_is_by_id_and_keeps_k():
  g = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.7, 0.7]], np.float32)
  ids = np.array([10, 10, 12, 13])  # two gallery items share id 10
  s, i = search.top_k(g, g, 2, "dot", query_ids=ids, gallery_ids=ids, backend="faiss:Flat")
  # Query 0 and 1 (id 10) must skip both items of id 10 and still return 2 neighbours.
  np.testing.assert_array_equal(i[:2], [[3, 2], [3, 2]])
  assert i[2, 0] == 3 and i[2, 1] in (0, 1)  # items 0 and 1 tie; faiss orders ties itself
  assert np.all(i >= 0) and np.all(np.isfinite(s))


@needs_faiss
def test_faiss_k_larger_than_gallery_pads():
  q, g = _data(2, 3, 4, 5)
  s, i = search.top_k(q, g, 6, "euclidean", backend="faiss:Flat")
  assert np.all(i[:, 4:] == -1) and np.all(np.isneginf(s[:, 4:]))
  ref_s, _ = search.top_k_search(q, g, 4, "euclidean")
  np.testing.assert_allclose(s[:, :4], ref_s, rtol=1e-4, atol=1e-4)


@needs_faiss
def test_faiss_bad_input_names_the_setting():
  q, g = _data(3, 3, 50, 4)
  with pytest.raises(ValueError, match="could not|cannot build"):
    search.top_k(q, g, 2, backend="faiss:NoSuchIndex7")
  with pytest.raises(ValueError, match="nprobe"):
    search.top_k(q, g, 2, backend="faiss:HNSW8", params="nprobe=4")
  with pytest.raises(ValueError, match="IVF cells"):
    search.top_k(q, g, 2, backend="faiss:IVF64,Flat")
  with pytest.raises(ValueError, match=r"\[Q, 4\]"):
    ann.FaissIndex(g, "cosine", "faiss:Flat").search(q[:, :3], 2)


@needs_faiss
def test_candidate_scores_keep_the_index_top_k_and_minus_inf_elsewhere():
  q, g = _data(4, 6, 30, 4)
  full = search.candidate_scores(q, g, "cosine")
  cand = search.candidate_scores(q, g, "cosine", backend="faiss:Flat", k=3)
  top3 = np.argsort(-full, axis=1, kind="stable")[:, :3]
  np.testing.assert_allclose(
    np.take_along_axis(cand, top3, 1), np.take_along_axis(full, top3, 1), rtol=1e-5, atol=1e-5
  )
  assert np.sum(np.isfinite(cand)) == 6 * 3


@needs_faiss
def test_retrieval_and_open_set_accept_the_faiss_backend():
  from jaxsim.evaluate import openset, retrieval

  rng = np.random.default_rng(5)
  labels = np.repeat(np.arange(40), 2)
  centres = rng.standard_normal((40, 16)).astype(np.float32)
  left = centres[np.arange(40)] + 0.3 * rng.standard_normal((40, 16)).astype(np.float32)
  right = centres[np.arange(40)] + 0.3 * rng.standard_normal((40, 16)).astype(np.float32)
  exact = retrieval.partner_metrics(left, right, np.arange(40))
  approx = retrieval.partner_metrics(left, right, np.arange(40), "faiss:Flat", "", 40)
  for key in exact:
    assert approx[key] == pytest.approx(exact[key], abs=1e-6), key
  emb = centres[labels] + 0.3 * rng.standard_normal((80, 16)).astype(np.float32)
  templates, cols = openset.identity_templates(emb, labels)
  s_exact, _ = openset.identity_scores(emb, templates, cols)
  s_hnsw, _ = openset.identity_scores(emb, templates, cols, "cosine", "faiss:HNSW8", "", 5)
  np.testing.assert_array_equal(s_hnsw.argmax(1), s_exact.argmax(1))
  assert openset.cmc_metrics(s_hnsw, cols, labels, (1, 5)) == openset.cmc_metrics(
    s_exact, cols, labels, (1, 5)
  )
