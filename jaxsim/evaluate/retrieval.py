"""Retrieval metrics: precision@1, Recall@K, R-precision, MAP@R, mAP@K, MRR@K.

Definitions follow pytorch-metric-learning's ``AccuracyCalculator``
(utils/accuracy_calculator.py; Musgrave, Belongie & Lim 2020, "A Metric Learning Reality
Check", ECCV) wherever it defines the metric. For a query q with R_q relevant gallery
items (same label, the query itself excluded) and relevance rel_q(i) of its i-th
neighbour (best first):

- ``precision_at_1``: rel_q(1).
- ``recall_at_{k}``: 1 if any of the first k neighbours is relevant (the metric-learning
  "Recall@K" of Oh Song et al. 2016, not recall = hits / R_q).
- ``r_precision``: (1 / R_q) sum_{i <= R_q} rel_q(i).
- ``map_at_r``: (1 / R_q) sum_{i <= R_q} P_q(i) rel_q(i), P_q(i) = precision of the first i.
- ``map_at_{k}``: sum_{i <= k} P_q(i) rel_q(i) / denominator. Default denominator
  min(k, R_q) (the largest attainable number of hits, so a perfect ranking scores 1).
  pytorch-metric-learning's ``mean_average_precision`` divides by the number of hits in
  the first k instead (max 1); pass ``map_at_k_denominator="hits"`` for that.
- ``mrr_at_{k}``: 1 / rank of the first relevant neighbour if it is within the first k,
  else 0 (pytorch-metric-learning's ``mean_reciprocal_rank`` with its k).

Every metric is averaged over queries (no per-class averaging). Queries with R_q = 0
("lone" queries: no other item of their label in the gallery) are left out of every
average, as pytorch-metric-learning does; ``num_lone_queries`` reports how many. If all
queries are lone the metrics are 0.0, again as pytorch-metric-learning returns.

Differences from pytorch-metric-learning: when queries are in the gallery it drops the
first neighbour by position (assumed to be the query itself); here the query's own
gallery entry is removed by id (`search.top_k_search`), which stays right when another
item ties with the query or is an exact duplicate of it. Ties between scores are broken
by gallery order (lower index ranks first); pytorch-metric-learning leaves the order of
ties to faiss.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np

from jaxsim.evaluate import clustered, search


def retrieval_metrics_from_relevance(
  relevant: np.typing.ArrayLike,
  num_relevant: np.typing.ArrayLike,
  ks: Sequence[int] = (1, 5, 10),
  map_at_k_denominator: str = "min_r_k",
) -> dict[str, float]:
  """Retrieval metrics from a ranked relevance matrix.

  Args:
    relevant: [Q, K] bool, relevant[q, i] = the i-th neighbour of query q has q's label.
      K must be >= max(ks) and >= max over non-lone queries of num_relevant.
    num_relevant: [Q] ints R_q, relevant gallery items per query (query itself excluded).
    ks: cut-offs for ``recall_at_{k}``, ``map_at_{k}`` and ``mrr_at_{k}``.
    map_at_k_denominator: ``"min_r_k"`` or ``"hits"`` (see the module docstring).

  Returns:
    Flat dict: ``precision_at_1``, ``r_precision``, ``map_at_r``, and for each k
    ``recall_at_{k}``, ``map_at_{k}``, ``mrr_at_{k}``; plus ``num_queries`` and
    ``num_lone_queries``.
  """
  rel = np.asarray(relevant, bool)
  r = np.asarray(num_relevant, np.int64).reshape(-1)
  if rel.ndim != 2 or rel.shape[0] != r.size:
    raise ValueError(
      f"relevant must be [Q, K] with Q = len(num_relevant), got {rel.shape}, {r.shape}"
    )
  if map_at_k_denominator not in ("min_r_k", "hits"):
    raise ValueError(
      f"map_at_k_denominator must be 'min_r_k' or 'hits', got {map_at_k_denominator!r}"
    )
  num_k = rel.shape[1]
  keep = r > 0
  out_counts = {"num_queries": float(r.size), "num_lone_queries": float((~keep).sum())}
  if max(ks) > num_k:
    raise ValueError(f"relevant has {num_k} columns, fewer than max(ks) = {max(ks)}")
  if keep.any() and r[keep].max() > num_k:
    raise ValueError(
      f"relevant has {num_k} columns but a query has R = {r[keep].max()} relevant items; "
      "R-precision and MAP@R need the first R neighbours"
    )
  names = ["precision_at_1", "r_precision", "map_at_r"]
  names += [f"{m}_at_{k}" for k in ks for m in ("recall", "map", "mrr")]
  if not keep.any():
    return {**dict.fromkeys(names, 0.0), **out_counts}
  rel, r = rel[keep], r[keep]
  ranks = np.arange(1, num_k + 1)
  hits = np.cumsum(rel, axis=1)
  precision_at_i = hits / ranks
  within_r = ranks[None, :] <= r[:, None]
  ap_terms = precision_at_i * rel
  first_hit = np.where(rel.any(1), np.argmax(rel, axis=1) + 1, num_k + 1)
  out = {
    "precision_at_1": float(rel[:, 0].mean()),
    "r_precision": float(np.mean(np.sum(rel & within_r, 1) / r)),
    "map_at_r": float(np.mean(np.sum(ap_terms * within_r, 1) / r)),
  }
  for k in ks:
    out[f"recall_at_{k}"] = float(rel[:, :k].any(1).mean())
    if map_at_k_denominator == "min_r_k":
      denom = np.minimum(k, r)
    else:
      denom = np.maximum(hits[:, k - 1], 1)
    out[f"map_at_{k}"] = float(np.mean(ap_terms[:, :k].sum(1) / denom))
    out[f"mrr_at_{k}"] = float(np.mean(np.where(first_hit <= k, 1.0 / first_hit, 0.0)))
  return {**out, **out_counts}


def count_relevant(
  query_labels: np.typing.ArrayLike,
  gallery_labels: np.typing.ArrayLike,
  query_ids: np.typing.ArrayLike | None = None,
  gallery_ids: np.typing.ArrayLike | None = None,
) -> np.ndarray:
  """R_q: gallery items with the query's label, minus gallery entries with the query's id.

  Returns:
    [Q] int64 counts.
  """
  query_labels = np.asarray(query_labels).reshape(-1)
  gallery_labels = np.asarray(gallery_labels).reshape(-1)
  labels, counts = np.unique(gallery_labels, return_counts=True)
  pos = np.clip(np.searchsorted(labels, query_labels), 0, max(labels.size - 1, 0))
  r = np.where(labels[pos] == query_labels, counts[pos], 0).astype(np.int64)
  if query_ids is not None:
    same = collections.Counter(
      zip(np.asarray(gallery_ids).tolist(), gallery_labels.tolist(), strict=True)
    )
    r -= np.array(
      [
        same.get((i, lab), 0)
        for i, lab in zip(np.asarray(query_ids).tolist(), query_labels.tolist(), strict=True)
      ],
      np.int64,
    )
  return r


def retrieval_metrics(
  query_embeddings: np.typing.ArrayLike,
  gallery_embeddings: np.typing.ArrayLike,
  query_labels: np.typing.ArrayLike,
  gallery_labels: np.typing.ArrayLike,
  query_ids: np.typing.ArrayLike | None = None,
  gallery_ids: np.typing.ArrayLike | None = None,
  ks: Sequence[int] = (1, 5, 10),
  metric: str = "cosine",
  map_at_k_denominator: str = "min_r_k",
  backend: str = "exact",
  search_params: str = "",
) -> dict[str, float]:
  """Retrieval metrics of queries against a gallery by nearest-neighbour search.

  The search is exact (tiled) by default; ``backend="faiss:..."`` scores the neighbours an
  approximate index returns (`search.top_k`), so the metrics are those of that index.

  When the queries are (some of) the gallery items, give each item an id and pass
  ``query_ids`` and ``gallery_ids``: a query's own entry is then removed from its
  ranking and from R_q. For "the gallery is the query set" use ``ids = arange(N)`` for both.

  Args:
    query_embeddings: [Q, D].
    gallery_embeddings: [N, D].
    query_labels: [Q] int labels.
    gallery_labels: [N] int labels.
    query_ids: [Q] int item ids, or None.
    gallery_ids: [N] int item ids, or None.
    ks: cut-offs.
    metric: a `search.METRICS` score.
    map_at_k_denominator: see `retrieval_metrics_from_relevance`.
    backend, search_params: see `search.top_k`.

  Returns:
    The flat dict of `retrieval_metrics_from_relevance`.
  """
  query_labels = np.asarray(query_labels).reshape(-1)
  gallery_labels = np.asarray(gallery_labels).reshape(-1)
  q = np.asarray(query_embeddings)
  g = np.asarray(gallery_embeddings)
  if q.shape[0] != query_labels.size or g.shape[0] != gallery_labels.size:
    raise ValueError(
      f"labels must match embeddings: queries {q.shape} vs {query_labels.shape}, "
      f"gallery {g.shape} vs {gallery_labels.shape}"
    )
  rel, r = ranked_relevance(
    q, g, query_labels, gallery_labels, query_ids, gallery_ids, ks, metric, backend, search_params
  )
  return retrieval_metrics_from_relevance(rel, r, ks, map_at_k_denominator)


def ranked_relevance(
  query_embeddings: np.typing.ArrayLike,
  gallery_embeddings: np.typing.ArrayLike,
  query_labels: np.typing.ArrayLike,
  gallery_labels: np.typing.ArrayLike,
  query_ids: np.typing.ArrayLike | None = None,
  gallery_ids: np.typing.ArrayLike | None = None,
  ks: Sequence[int] = (1, 5, 10),
  metric: str = "cosine",
  backend: str = "exact",
  search_params: str = "",
) -> tuple[np.ndarray, np.ndarray]:
  """The ranked relevance matrix and R_q that `retrieval_metrics` scores.

  ``backend`` and ``search_params`` choose the search (`search.top_k`). Search once, then
  score any subset or resample of the queries (a bootstrap over query units) with
  `retrieval_metrics_from_relevance` on rows of the result.

  Returns:
    (relevant [Q, K] bool, num_relevant [Q]) with K = max(max(ks), max R_q).
  """
  q, g = np.asarray(query_embeddings), np.asarray(gallery_embeddings)
  query_labels = np.asarray(query_labels).reshape(-1)
  gallery_labels = np.asarray(gallery_labels).reshape(-1)
  r = count_relevant(query_labels, gallery_labels, query_ids, gallery_ids)
  num_k = int(max(max(ks), r.max(initial=0)))
  search_k = min(num_k, g.shape[0])
  _, idx = search.top_k(
    q, g, search_k, metric, query_ids, gallery_ids, backend=backend, params=search_params
  )
  rel = np.zeros((q.shape[0], num_k), bool)
  rel[:, :search_k] = (idx >= 0) & (gallery_labels[np.maximum(idx, 0)] == query_labels[:, None])
  return rel, r


def retrieval_report(
  queries,
  gallery,
  query_labels,
  gallery_labels,
  ks: Sequence[int],
  units,
  keys: Sequence[str] = (
    "recall_at_1",
    "recall_at_5",
    "recall_at_10",
    "precision_at_1",
    "map_at_r",
  ),
  interval_keys: Sequence[str] = ("recall_at_1", "map_at_r"),
  num_resamples: int = 1000,
  seed: int = 0,
  backend: str = "exact",
  search_params: str = "",
) -> dict[str, float]:
  """Retrieval metrics `keys`, with 95% intervals of `interval_keys` over query `units`.

  The search runs once (``backend`` and ``search_params`` as in `search.top_k`); each
  bootstrap replicate rescores the drawn queries' ranked relevance rows (the queries of
  one unit are drawn together; the gallery is fixed). ``ci_num_units`` is the number of
  units.
  """
  rel, r = ranked_relevance(
    queries,
    gallery,
    query_labels,
    gallery_labels,
    ks=ks,
    backend=backend,
    search_params=search_params,
  )
  m = retrieval_metrics_from_relevance(rel, r, ks)
  out = {k: m[k] for k in keys if k in m}

  def stat(rel_rows, r_rows):
    s = retrieval_metrics_from_relevance(rel_rows, r_rows, ks)
    return {k: s[k] for k in interval_keys}

  boot = clustered.subject_bootstrap(
    clustered.repeat_statistic(stat, rel, r), units, num_resamples=num_resamples, seed=seed
  )
  out.update({k: v for k, v in boot.items() if "_ci_" in k})
  out["ci_num_units"] = boot["num_subjects"]
  return out


def nearest_prototype_metrics(embeddings, labels, prototypes) -> dict[str, float]:
  """Zero-shot classification by the most similar prototype (rows of `prototypes` = classes).

  Returns accuracy, balanced accuracy and the accuracy of each class present.
  """
  pred = np.argmax(np.asarray(embeddings) @ np.asarray(prototypes).T, axis=1)
  labels = np.asarray(labels)
  per_class = {
    f"accuracy_digit_{d}": float(np.mean(pred[labels == d] == d)) for d in np.unique(labels)
  }
  return {
    "accuracy": float(np.mean(pred == labels)),
    "balanced_accuracy": float(np.mean(list(per_class.values()))),
    **per_class,
  }


def partner_metrics(
  left,
  right,
  labels,
  backend: str = "exact",
  search_params: str = "",
  k: int = 100,
  ranks: np.ndarray | None = None,
) -> dict[str, float]:
  """R@1/5/10, MAP@R, MRR (whole gallery) and MRR@10 of left queries against right partners.

  With an approximate backend every figure comes from the partners' ranks among the
  index's k candidates (`partner_ranks`; pass ``ranks`` if already computed, so the index
  is built once): a partner the index did not return counts as ranked last.
  """
  n = len(labels)
  if backend != "exact":
    r = partner_ranks(left, right, labels, backend, search_params, k) if ranks is None else ranks
    r = np.asarray(r, np.float64)
    return {
      **{f"recall_at_{c}": float(np.mean(r <= c)) for c in (1, 5, 10)},
      "map_at_r": float(np.mean(r == 1)),  # one relevant item: AP@R is 1 at rank 1, else 0
      "mrr_at_10": float(np.mean(np.where(r <= 10, 1.0 / r, 0.0))),
      "mrr": float(np.mean(1.0 / r)),
      "gallery_size": float(n),
    }
  m = retrieval_metrics(left, right, labels, labels, ks=sorted({1, 5, 10, n}))
  out = {k: m[k] for k in ("recall_at_1", "recall_at_5", "recall_at_10", "map_at_r", "mrr_at_10")}
  out["mrr"] = m[f"mrr_at_{n}"]
  out["gallery_size"] = float(n)
  return out


def partner_ranks(
  left: np.ndarray,
  right: np.ndarray,
  labels: np.ndarray,
  backend: str = "exact",
  search_params: str = "",
  k: int = 100,
) -> np.ndarray:
  """[Q] rank of each left query's partner among the right gallery (1 = first).

  One relevant item per query (its pair's right image). Ties count against the query:
  rank = 1 + the number of gallery items scoring at least as high, other than the partner.
  With an approximate backend (`search.candidate_scores`) a partner that is not among
  the index's k candidates ranks last.
  """
  labels = np.asarray(labels).reshape(-1)
  relevant = labels[:, None] == labels[None, :]
  if not np.all(relevant.sum(1) == 1):
    raise ValueError("each query needs exactly one relevant gallery item (its partner)")
  s = search.candidate_scores(left, right, "cosine", backend, search_params, k)
  partner = s[relevant]
  return 1 + np.sum((s >= partner[:, None]) & ~relevant, axis=1)


def partner_rank_intervals(
  ranks: np.ndarray, identities: np.ndarray, num_resamples: int, seed: int
) -> dict[str, float]:
  """R@1, R@10, MAP@R and MRR with 95% intervals by a bootstrap over query identities.

  Each query (a left image) is a unit; queries of one identity are drawn together. The
  gallery stays fixed, so the intervals are conditional on it.
  """
  ranks = np.asarray(ranks, np.float64)
  per_query = {
    "recall_at_1": ranks <= 1,
    "recall_at_10": ranks <= 10,
    "map_at_r": ranks <= 1,  # one relevant item: AP@R is 1 at rank 1, else 0
    "mrr": 1 / ranks,
  }

  def statistic(weights):
    w = np.asarray(weights, np.float64)
    return {k: float(w @ v / w.sum()) for k, v in per_query.items()}

  return clustered.subject_bootstrap(statistic, identities, num_resamples=num_resamples, seed=seed)


def partner_chance_metrics(n: int) -> dict[str, float]:
  """Expected metrics of a random ranking of a gallery of n items with one relevant item."""
  harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
  return {
    "recall_at_1": 1.0 / n,
    "recall_at_5": min(5, n) / n,
    "recall_at_10": min(10, n) / n,
    "map_at_r": 1.0 / n,
    "mrr": harmonic / n,
    "mrr_at_10": float(np.sum(1.0 / np.arange(1, min(10, n) + 1))) / n,
  }
