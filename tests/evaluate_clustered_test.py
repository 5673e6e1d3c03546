"""Subject-level inference: weighted statistics, cluster-bootstrap coverage, permutation level."""

import numpy as np
import pytest

from jaxsim.evaluate import clustered, overlap, verification


def _clustered_pairs(rng, num_subjects=60, records=4, num_pairs=1000, effect=0.0, spread=1.0):
  """A pair list over subjects with subject random effects (pairs sharing subjects correlate).

  Score of a pair of records (s, t): u_s + v_t + noise, plus `effect` for genuine pairs.
  With effect 0 genuine and impostor scores have the same law (true AUC 0.5).
  """
  u, v = rng.normal(0, spread, num_subjects), rng.normal(0, spread, num_subjects)
  ra, rb = rng.normal(0, 0.5, (num_subjects, records)), rng.normal(0, 0.5, (num_subjects, records))
  half = num_pairs // 2
  sa = np.r_[rng.integers(0, num_subjects, half), rng.integers(0, num_subjects, half)]
  sb = np.r_[sa[:half], (sa[half:] + rng.integers(1, num_subjects, half)) % num_subjects]
  ka, kb = rng.integers(0, records, num_pairs), rng.integers(0, records, num_pairs)
  label = (sa == sb).astype(np.int32)
  score = u[sa] + v[sb] + ra[sa, ka] + rb[sb, kb] + effect * label + rng.normal(0, 0.3, num_pairs)
  return score, label, sa, sb


def test_verification_statistic_matches_unweighted_functions_and_repeated_rows():
  rng = np.random.default_rng(0)
  s, y = rng.normal(size=300).round(1), rng.integers(0, 2, 300)  # rounding makes ties
  s[y == 1] += 0.7
  thr = 0.3
  stat = clustered.verification_statistic(s, y, threshold=thr, fars=(0.1, 0.01))
  out = stat(np.ones(s.size))
  assert out["auc"] == pytest.approx(verification.roc_auc(s, y))
  assert out["eer"] == pytest.approx(verification.equal_error_rate(s, y)[0])
  assert out["tar_at_far_1e-01"] == pytest.approx(verification.tar_at_far(s, y, 0.1)["tar"])
  assert out["tar_at_far_1e-02"] == pytest.approx(verification.tar_at_far(s, y, 0.01)["tar"])
  at = verification.metrics_at_threshold(s, y, thr)
  for k in ("accuracy", "far", "frr"):
    assert out[k] == pytest.approx(at[k])
  w = rng.integers(0, 4, s.size)
  w[np.flatnonzero(y == 1)[0]] = 1
  w[np.flatnonzero(y == 0)[0]] = 1
  rep = clustered.repeat_statistic(
    lambda a, b: {
      "auc": verification.roc_auc(a, b),
      "eer": verification.equal_error_rate(a, b)[0],
      "accuracy": verification.metrics_at_threshold(a, b, thr)["accuracy"],
    },
    s,
    y,
  )(w)
  weighted = stat(w)
  for k in rep:
    assert weighted[k] == pytest.approx(rep[k]), k
  assert verification.roc_auc(s, y, weights=w) == pytest.approx(rep["auc"])


def test_weighted_counts_and_pair_weights_equal_their_direct_formulas_exactly():
  # `_SortedScores.counts` takes false accepts as all accepts minus true accepts, and
  # `pair_weights` is one product: exact for integer weights, so equal to the bit.
  rng = np.random.default_rng(3)
  for s in (rng.normal(size=500), rng.normal(size=500).round(1)):  # distinct, then ties
    y = rng.integers(0, 2, s.size)
    ss = clustered._SortedScores(s, y)
    w = rng.integers(0, 7, s.size).astype(np.float64)
    order = np.argsort(-s, kind="mergesort")
    last = np.r_[np.flatnonzero(np.diff(s[order])), s.size - 1]
    fp, tp = ss.counts(w)
    np.testing.assert_array_equal(tp, np.r_[0.0, np.cumsum(w[order] * y[order])[last]])
    np.testing.assert_array_equal(fp, np.r_[0.0, np.cumsum(w[order] * (1 - y[order]))[last]])
    assert fp.size == ss.thresholds.size
  sa, sb = rng.integers(0, 20, 300), rng.integers(0, 20, 300)
  sb[:50] = sa[:50]
  subj = clustered._Subjects(sa, sb)
  c = subj.draw(rng)
  direct = np.where(subj.ia == subj.ib, c[subj.ia], c[subj.ia] * c[subj.ib])
  np.testing.assert_array_equal(subj.pair_weights(c), direct)


def test_subject_bootstrap_on_threads_equals_the_sequential_bootstrap(monkeypatch):
  rng = np.random.default_rng(4)
  score, label, sa, sb = _clustered_pairs(rng, num_pairs=2000, effect=1.0)
  stat = clustered.verification_statistic(score, label, threshold=0.5, fars=(0.01,))
  assert clustered._bootstrap_threads(10) == 1  # short pair lists stay on one thread
  out = {}
  for threads in (1, 3):
    monkeypatch.setattr(clustered, "_bootstrap_threads", lambda n, t=threads: t)
    out[threads] = clustered.subject_bootstrap(stat, sa, sb, num_resamples=60, seed=2)
  assert out[1] == out[3]


def test_overlap_statistic_matches_overlap_module():
  rng = np.random.default_rng(1)
  g, i = rng.normal(1, 1, 150), rng.normal(0, 1.5, 400)
  s, y = np.r_[g, i], np.r_[np.ones(150), np.zeros(400)]
  out = clustered.overlap_statistic(s, y)(np.ones(s.size))
  for name, fn in overlap.OVERLAP_STATISTICS.items():
    assert out[name] == pytest.approx(fn(g, i), rel=1e-9, abs=1e-12), name


def test_subject_bootstrap_covers_a_null_auc_on_clustered_data():
  # face_fp-like structure: 60 test subjects x 4 records, 600 pairs sharing subjects,
  # true AUC 0.5; the nominal 95% subject interval must cover it at least 90% of the time.
  covered, replicates = 0, 200
  for r in range(replicates):
    s, y, sa, sb = _clustered_pairs(np.random.default_rng([7, r]), num_pairs=600)
    sub = clustered.subject_bootstrap(
      clustered.verification_statistic(s, y), sa, sb, num_resamples=100, seed=r
    )
    covered += sub["auc_ci_low"] <= 0.5 <= sub["auc_ci_high"]
  assert covered / replicates >= 0.90


def test_subject_bootstrap_strata_keep_group_sizes_and_one_sided_mode():
  rng = np.random.default_rng(2)
  s, y, sa, sb = _clustered_pairs(rng, num_subjects=20, num_pairs=400, effect=1.0)
  s2, y2, sa2, sb2 = _clustered_pairs(rng, num_subjects=20, num_pairs=400, effect=0.0)
  group = np.r_[np.zeros(400), np.ones(400)]
  a, b = np.r_[sa, sa2 + 100], np.r_[sb, sb2 + 100]

  def gap(w):
    return verification.roc_auc(s, y, w[:400]) - verification.roc_auc(s2, y2, w[400:])

  out = clustered.subject_bootstrap(gap, a, b, strata=group, num_resamples=100, seed=0)
  assert out["value_ci_low"] < out["value"] < out["value_ci_high"]
  assert out["value_ci_low"] > 0  # effect 1 vs effect 0
  assert out["num_subjects"] == 40
  with pytest.raises(ValueError, match="strata"):
    clustered.subject_bootstrap(gap, a, b, strata=np.r_[group[1:], 0], num_resamples=2)
  one = clustered.subject_bootstrap(lambda w: np.average(s, weights=w), sa, num_resamples=50)
  assert one["value"] == pytest.approx(s.mean())


def test_identity_permutation_test_holds_its_level_and_has_power():
  rejections, replicates = 0, 500
  for r in range(replicates):
    rng = np.random.default_rng([11, r])
    num_subjects, records = 30, 3
    ida = np.repeat(np.arange(num_subjects), records)
    emb_a = rng.normal(size=(num_subjects, 4))[ida] + rng.normal(0, 0.5, (ida.size, 4))
    emb_b = rng.normal(size=(num_subjects, 4))[ida] + rng.normal(0, 0.5, (ida.size, 4))
    pairs = clustered.all_cross_pairs(ida, ida)
    score = np.sum(emb_a[pairs["a"]] * emb_b[pairs["b"]], 1)
    out = clustered.identity_permutation_test(
      score, ida[pairs["a"]], ida[pairs["b"]], num_permutations=199, seed=r
    )
    rejections += out["p_value"] <= 0.05
  assert rejections / replicates <= 0.07
  # An alternative: side b shares a latent with side a.
  rng = np.random.default_rng(5)
  ida = np.repeat(np.arange(30), 3)
  latent = rng.normal(size=(30, 4))
  emb_a = latent[ida] + rng.normal(0, 1.0, (ida.size, 4))
  emb_b = latent[ida] + rng.normal(0, 1.0, (ida.size, 4))
  pairs = clustered.all_cross_pairs(ida, ida)
  score = np.sum(emb_a[pairs["a"]] * emb_b[pairs["b"]], 1)
  out = clustered.identity_permutation_test(score, ida[pairs["a"]], ida[pairs["b"]], 999)
  assert out["auc"] > 0.6 and out["p_value"] < 0.01
  assert out["null_mean"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("cluster", [False, True])
def test_isotropy_test_on_independent_pairs_holds_its_level(cluster):
  # face_fp's default cross-modal split under the exact null: 200 test subjects x 2
  # records per modality, 16-d unit embeddings, optionally clustered by subject.
  dim, num_subjects, records = 16, 200, 2
  ids = np.repeat(np.arange(num_subjects), records)
  rejections, replicates = {"genuine": 0, "impostor": 0}, 600
  for r in range(replicates):
    rng = np.random.default_rng([17, r])

    def embed(rng=rng):
      x = rng.normal(size=(ids.size, dim))
      if cluster:  # records of a subject near a uniform centre: still uniform marginally
        x = 0.2 * x + rng.normal(size=(num_subjects, dim))[ids] * 3
      return x / np.linalg.norm(x, axis=1, keepdims=True)

    ea, eb = embed(), embed()
    pairs = clustered.independent_pairs(ids, ids, seed=r)
    d = np.linalg.norm(ea[pairs["a"]] - eb[pairs["b"]], axis=1)
    for name, lab in (("genuine", 1), ("impostor", 0)):
      p = overlap.null_distance_test(d[pairs["label"] == lab], dim)["ks_pvalue"]
      rejections[name] += p <= 0.05
  for name, count in rejections.items():
    assert count / replicates <= 0.07, name


def test_independent_pairs_form_a_path():
  ids = np.repeat(np.arange(10), 3)
  p = clustered.independent_pairs(ids, ids, seed=0)
  assert p["label"].sum() == 10 and (p["label"] == 0).sum() == 9
  assert np.all(ids[p["a"]][p["label"] == 1] == ids[p["b"]][p["label"] == 1])
  assert np.all(ids[p["a"]][p["label"] == 0] != ids[p["b"]][p["label"] == 0])
  # Each record appears at most twice (once genuine, once impostor): a path, no cycle.
  assert np.bincount(p["a"]).max() <= 2 and np.bincount(p["b"]).max() <= 2


def test_semantic_gap_report_on_independent_towers():
  from jaxsim.evaluate import cross_modal

  rng = np.random.default_rng(3)
  dim, ids = 8, np.repeat(np.arange(40), 2)

  def unit(n):
    x = rng.normal(size=(n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)

  ea, eb = unit(ids.size), unit(ids.size)  # independent towers: no information
  full = np.linalg.norm(ea[:, None] - eb[None], axis=-1)
  pairs = clustered.all_cross_pairs(ids, ids)
  d, y = full.reshape(-1), pairs["label"]
  subj = (ids[pairs["a"]], ids[pairs["b"]])
  out = cross_modal.semantic_gap_report(
    {"train": d, "test": d},
    {"train": y, "test": y},
    {"train": (subj[0] + 100, subj[1] + 100), "test": subj},  # other subjects, same data
    full,
    (ids, ids),
    dim,
    num_resamples=50,
    num_permutations=200,
  )
  assert out["test_overlap"]["auc_ci_low"] < 0.5 < out["test_overlap"]["auc_ci_high"]
  assert out["permutation_test"]["p_value"] > 0.05
  assert out["memorisation"]["auc_gap"] == pytest.approx(0.0)
  assert out["isotropy_genuine"]["n"] == 40 and out["isotropy_impostor"]["n"] == 39


def test_auc_difference_is_paired_and_its_interval_sees_a_real_gap():
  rng = np.random.default_rng(3)
  n, num_ids = 3000, 30
  a, b = rng.integers(0, num_ids, n), rng.integers(0, num_ids, n)
  b[: n // 3] = a[: n // 3]
  labels = (a == b).astype(int)
  effect = rng.normal(0, 0.5, num_ids)  # shared by both matchers: a paired design
  base = labels + effect[a] + effect[b]
  better, worse = base + rng.normal(0, 0.3, n), base + rng.normal(0, 1.0, n)
  stat = clustered.auc_difference_statistic(better, worse, labels)
  ones = stat(np.ones(n))
  assert ones["auc_a"] == pytest.approx(verification.roc_auc(better, labels))
  assert ones["auc_b"] == pytest.approx(verification.roc_auc(worse, labels))
  assert ones["auc_difference"] == pytest.approx(ones["auc_a"] - ones["auc_b"])
  out = clustered.subject_bootstrap(stat, a, b, num_resamples=200, seed=0)
  assert out["auc_difference_ci_low"] > 0  # a real gap is seen with 30 identities
  same = clustered.subject_bootstrap(
    clustered.auc_difference_statistic(better, better, labels), a, b, num_resamples=50
  )
  assert same["auc_difference_ci_low"] == same["auc_difference_ci_high"] == 0.0
  with pytest.raises(ValueError, match="same length"):
    clustered.auc_difference_statistic(better, worse[:-1], labels)
