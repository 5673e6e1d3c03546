"""Retrieval metrics on hand-worked rankings and against pytorch-metric-learning's definitions."""

import numpy as np
import pytest

from jaxsim.evaluate import retrieval


def test_hand_worked_relevance():
  rel = np.array(
    [
      [0, 1, 1, 0],  # R = 2
      [1, 0, 0, 0],  # R = 1
      [0, 0, 0, 0],  # R = 0: lone, left out of every average
      [1, 0, 1, 1],  # R = 3
    ],
    bool,
  )
  r = np.array([2, 1, 0, 3])
  out = retrieval.retrieval_metrics_from_relevance(rel, r, ks=(1, 2))
  expected = {
    "precision_at_1": 2 / 3,
    "r_precision": (1 / 2 + 1 + 2 / 3) / 3,
    "map_at_r": (1 / 4 + 1 + 5 / 9) / 3,  # row 1: (1/2)(1/2); row 4: (1 + 2/3) / 3
    "recall_at_1": 2 / 3,
    "recall_at_2": 1.0,
    "mrr_at_1": 2 / 3,
    "mrr_at_2": (1 / 2 + 1 + 1) / 3,
    "map_at_1": 2 / 3,
    "map_at_2": (1 / 4 + 1 + 1 / 2) / 3,  # denominators min(2, R) = 2, 1, 2
    "num_queries": 4.0,
    "num_lone_queries": 1.0,
  }
  assert out == pytest.approx(expected)
  hits = retrieval.retrieval_metrics_from_relevance(rel, r, ks=(2,), map_at_k_denominator="hits")
  assert hits["map_at_2"] == pytest.approx((1 / 2 + 1 + 1) / 3)  # divided by hits in top 2


def test_all_lone_queries_give_zero_like_pml():
  out = retrieval.retrieval_metrics_from_relevance(np.zeros((2, 3), bool), [0, 0], ks=(1,))
  assert out["precision_at_1"] == 0.0 and out["num_lone_queries"] == 2.0


def test_ties_self_match_and_lone_label_end_to_end():
  # 1-D points. Item 1 sits exactly on item 0 (a tie with the query itself); items 2 and 4
  # tie at distance 1 from items 0 and 1; item 3 has a label nobody else has.
  x = np.array([[0.0], [0.0], [1.0], [3.0], [1.0]], np.float32)
  labels = np.array([0, 1, 0, 2, 1])
  ids = np.arange(5)
  out = retrieval.retrieval_metrics(
    x, x, labels, labels, ids, ids, ks=(1, 2, 3), metric="euclidean"
  )
  # Rankings (self removed by id, ties to the lower index):
  # q0: 1, 2, 4, 3 -> rel [0, 1, 0];  q1: 0, 2, 4 -> [0, 0, 1];
  # q2: 4, 0, 1 -> [0, 1, 0];          q4: 2, 0, 1 -> [0, 0, 1];  q3 lone.
  assert out["num_lone_queries"] == 1.0
  assert out["precision_at_1"] == 0.0
  assert out["recall_at_2"] == pytest.approx(0.5)
  assert out["recall_at_3"] == pytest.approx(1.0)
  assert out["mrr_at_3"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 2 + 1 / 3) / 4)
  assert out["r_precision"] == 0.0 and out["map_at_r"] == 0.0


def _pml_reference(q, g, ql, gl, same_source, k):
  """pytorch-metric-learning's AccuracyCalculator formulas in NumPy (no ties in the data)."""
  d = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
  order = np.argsort(d, axis=1)
  if same_source:
    order = order[:, 1:]  # PML drops the first neighbour by position
  labels_u, counts = np.unique(gl, return_counts=True)
  count_of = dict(zip(labels_u.tolist(), counts.tolist(), strict=True))
  r = np.array([count_of.get(lab, 0) - int(same_source) for lab in ql.tolist()])
  keep = r > 0
  knn = gl[order][keep][:, : max(k, r.max())]
  ql, r = ql[keep], r[keep]
  same = knn == ql[:, None]
  mask = np.arange(knn.shape[1])[None, :] < r[:, None]
  eq = same & mask
  prec = np.cumsum(eq, 1) * eq / np.arange(1, knn.shape[1] + 1)
  first = np.argmax(same[:, :k], 1)
  mrr = np.where(same[:, :k].any(1), 1.0 / (first + 1), 0.0)
  return {
    "precision_at_1": same[:, 0].mean(),
    "r_precision": (eq.sum(1) / r).mean(),
    "map_at_r": (prec.sum(1) / r).mean(),
    f"mrr_at_{k}": mrr.mean(),
  }


@pytest.mark.parametrize("same_source", [True, False])
def test_matches_pml_definitions_on_random_data(same_source):
  rng = np.random.default_rng(0)
  g = rng.standard_normal((300, 5)).astype(np.float32)
  gl = rng.integers(0, 12, 300)
  gl[gl == 11] = 11  # a few labels may be rare; label 99 below is lone
  if same_source:
    q, ql, ids = g, gl, np.arange(300)
    out = retrieval.retrieval_metrics(q, g, ql, gl, ids, ids, ks=(10,), metric="euclidean")
  else:
    q = rng.standard_normal((80, 5)).astype(np.float32)
    ql = rng.integers(0, 12, 80)
    ql[:3] = 99
    out = retrieval.retrieval_metrics(q, g, ql, gl, ks=(10,), metric="euclidean")
    assert out["num_lone_queries"] == 3.0
  ref = _pml_reference(q, g, ql, gl, same_source, 10)
  for name, value in ref.items():
    assert out[name] == pytest.approx(value, abs=1e-9), name


def test_count_relevant_removes_only_the_query_item():
  r = retrieval.count_relevant(
    [0, 0, 1], [0, 0, 0, 1], query_ids=[0, 7, 3], gallery_ids=[0, 1, 2, 3]
  )
  np.testing.assert_array_equal(r, [2, 3, 0])
