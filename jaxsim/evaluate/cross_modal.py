"""The "semantic gap" of a two-tower model, with subjects as the independent units.

Given the distances of a model's fixed train and test pair lists (side a of a pair is
one modality's record, side b the other's) and the distances of every test side-a
record to every test side-b record, `semantic_gap_report` gives:
- AUC and the overlap statistics of the test pair list, 95% intervals by a bootstrap
  over test subjects (`clustered.subject_bootstrap`);
- the identity permutation test of "no cross-modal information" on the full test
  matrix (`clustered.identity_permutation_test`);
- the memorisation gap, train-pair AUC minus test-pair AUC, with train and test
  subjects resampled within their own split;
- the isotropy test against the sqrt(2) null on one distance per distinct record pair
  (`clustered.independent_pairs`, `overlap.null_distance_test`), which asks whether the
  embedding is isotropic, not whether the modalities share information.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxsim.evaluate import clustered, overlap


def auc_difference_statistic(scores_a, labels_a, scores_b, labels_b) -> clustered.Statistic:
  """AUC of pair list A minus AUC of pair list B, of weighted pairs (A's weights first).

  For `clustered.subject_bootstrap` over the two lists concatenated (A then B); returns
  ``auc_a``, ``auc_b`` and ``auc_difference``.
  """
  sa = clustered.verification_statistic(scores_a, labels_a)
  sb = clustered.verification_statistic(scores_b, labels_b)
  n = len(np.asarray(labels_a).reshape(-1))

  def statistic(w):
    a, b = sa(w[:n])["auc"], sb(w[n:])["auc"]
    return {"auc_a": a, "auc_b": b, "auc_difference": a - b}

  return statistic


def semantic_gap_report(
  distances: Mapping[str, np.ndarray],
  labels: Mapping[str, np.ndarray],
  subjects: Mapping[str, tuple[np.ndarray, np.ndarray]],
  test_matrix: np.ndarray,
  test_subjects: tuple[np.ndarray, np.ndarray],
  dim: int,
  num_resamples: int = 1000,
  num_permutations: int = 10000,
  seed: int = 0,
) -> dict[str, Any]:
  """The subject-level semantic-gap statistics (see the module docstring).

  Args:
    distances, labels, subjects: per split ("train", "test"): the pair list's [P]
      Euclidean distances, 1/0 labels and the subjects of its two sides.
    test_matrix: [Na, Nb] distances of every test side-a record to every side-b record.
    test_subjects: the subjects of those rows and columns.
    dim: embedding dimension (for the sqrt(2) null).

  Returns:
    ``test_overlap`` (AUC, d', Bhattacharyya, overlap coefficient, KS with subject
    intervals and pair counts), ``permutation_test``, ``memorisation`` (``train_auc``,
    ``test_auc``, ``auc_gap`` with intervals), ``isotropy_genuine``,
    ``isotropy_impostor``, ``test_distances``, ``train_distances``.
  """
  d, y = distances, {k: np.asarray(v) for k, v in labels.items()}
  out: dict[str, Any] = {}
  out["test_overlap"] = clustered.subject_bootstrap(
    clustered.overlap_statistic(-d["test"], y["test"]),
    *subjects["test"],
    num_resamples=num_resamples,
    seed=seed,
  )
  out["test_overlap"]["num_genuine"] = float(y["test"].sum())
  out["test_overlap"]["num_impostor"] = float((y["test"] == 0).sum())
  gap = clustered.subject_bootstrap(
    auc_difference_statistic(-d["train"], y["train"], -d["test"], y["test"]),
    np.r_[subjects["train"][0], subjects["test"][0]],
    np.r_[subjects["train"][1], subjects["test"][1]],
    strata=np.r_[np.zeros(y["train"].size), np.ones(y["test"].size)],
    num_resamples=num_resamples,
    seed=seed,
  )
  renamed = {"auc_a": "train_auc", "auc_b": "test_auc", "auc_difference": "auc_gap"}
  out["memorisation"] = {
    next((renamed[p] + k[len(p) :] for p in renamed if k.startswith(p)), k): v
    for k, v in gap.items()
  }
  ida, idb = test_subjects
  out["permutation_test"] = clustered.identity_permutation_test(
    -test_matrix.reshape(-1),
    np.repeat(ida, len(idb)),
    np.tile(idb, len(ida)),
    num_permutations=num_permutations,
    seed=seed,
  )
  indep = clustered.independent_pairs(ida, idb, seed=seed)
  d_indep = test_matrix[indep["a"], indep["b"]]
  out["isotropy_genuine"] = overlap.null_distance_test(d_indep[indep["label"] == 1], dim)
  out["isotropy_impostor"] = overlap.null_distance_test(d_indep[indep["label"] == 0], dim)
  for k in ("test", "train"):
    out[f"{k}_distances"] = overlap.distance_summary(d[k], y[k])
  return out
