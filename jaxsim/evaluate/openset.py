"""Closed- and open-set identification (1:N): templates, CMC, FNIR at FPIR, Top-k candidates.

A gallery enrols identities as templates (the centroid of each identity's embeddings, or
every embedding); a probe is scored against every enrolled identity (its best template).
Mated probes belong to an enrolled identity, non-mated probes do not, and open-set
evaluation needs real non-mated probes (people never enrolled), not held-out images of
enrolled people.

Definitions (NIST FRVT Part 2: Identification, NISTIR 8271 sec. 3; Grother & Ngan), for a
threshold T and rank R:
- FPIR(T) = fraction of non-mated probes whose best identity score is >= T (at least one
  candidate returned).
- FNIR(T, R) = fraction of mated probes whose mated identity is not among the first R
  candidates or scores below T.
- DIR(T, R) = 1 - FNIR(T, R), the detection and identification rate; "DIR at FAR" in the
  open-set literature is DIR at FPIR.
- CMC(r) = fraction of mated probes whose mated identity is ranked r or better (closed
  set, no threshold); CMC(1) is the rank-1 identification rate.
Ranks: 1 + the number of identities scoring higher, ties going to the identity listed
first (the same rule as `search.top_k_search`).

Scores are similarities (higher = more similar).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from jaxsim.evaluate import calibration, clustered, search


def identity_templates(
  embeddings: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  mode: str = "centroid",
  normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
  """Gallery templates from enrolment embeddings.

  Args:
    embeddings: [N, D] enrolment embeddings.
    identities: [N] int identity of each.
    mode: ``"centroid"`` (one template per identity: the mean of its L2-normalised
      embeddings, normalised again when ``normalize``) or ``"all"`` (every embedding).
    normalize: L2-normalise embeddings (and centroids).

  Returns:
    (templates [T, D] float32, template_identities [T]).
  """
  x = np.asarray(embeddings, np.float64)
  ids = np.asarray(identities).reshape(-1)
  if x.ndim != 2 or x.shape[0] != ids.size:
    raise ValueError(f"embeddings must be [N, D] with N = len(identities): {x.shape}, {ids.shape}")
  if normalize:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  if mode == "all":
    return x.astype(np.float32), ids
  if mode != "centroid":
    raise ValueError(f"mode must be 'centroid' or 'all', got {mode!r}")
  uniq, inverse = np.unique(ids, return_inverse=True)
  sums = np.zeros((uniq.size, x.shape[1]))
  np.add.at(sums, inverse, x)
  cent = sums / np.bincount(inverse)[:, None]
  if normalize:
    cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
  return cent.astype(np.float32), uniq


def identity_scores(
  probe_embeddings: np.typing.ArrayLike,
  templates: np.typing.ArrayLike,
  template_identities: np.typing.ArrayLike,
  metric: str = "cosine",
  backend: str = "exact",
  search_params: str = "",
  k: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
  """Score of every probe against every enrolled identity (max over its templates).

  ``backend``, ``search_params``: the search (`search.candidate_scores`). With an
  approximate index only each probe's k best templates are scored and the rest are -inf,
  so ranks and candidate lists are exact up to the index's recall within the first k.

  Returns:
    (scores [P, I], identities [I] sorted ascending).
  """
  tid = np.asarray(template_identities).reshape(-1)
  s = search.candidate_scores(probe_embeddings, templates, metric, backend, search_params, k)
  order = np.argsort(tid, kind="stable")
  tid_sorted = tid[order]
  uniq, starts = np.unique(tid_sorted, return_index=True)
  return np.maximum.reduceat(s[:, order], starts, axis=1), uniq


def _mated_rank_and_score(scores, identities, probe_identities):
  s = np.asarray(scores, np.float64)
  ids = np.asarray(identities).reshape(-1)
  pid = np.asarray(probe_identities).reshape(-1)
  if s.shape != (pid.size, ids.size):
    raise ValueError(f"scores must be [P, I] = [{pid.size}, {ids.size}], got {s.shape}")
  col = {v: j for j, v in enumerate(ids.tolist())}
  mated = np.array([p in col for p in pid.tolist()], bool)
  j = np.array([col.get(p, 0) for p in pid.tolist()])
  ms = s[np.arange(pid.size), j]
  higher = np.sum(s > ms[:, None], axis=1)
  tied_before = np.sum((s == ms[:, None]) & (np.arange(ids.size)[None, :] < j[:, None]), axis=1)
  rank = 1 + higher + tied_before
  return mated, np.where(mated, rank, 0), np.where(mated, ms, np.nan), s.max(axis=1)


def cmc_curve(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
  max_rank: int = 10,
) -> np.ndarray:
  """Closed-set CMC over the mated probes.

  Args:
    scores: [P, I] probe-identity scores.
    identities: [I] enrolled identities (columns).
    probe_identities: [P] true identity of each probe; non-mated probes are ignored.
    max_rank: last rank.

  Returns:
    [max_rank] identification rates at ranks 1..max_rank.
  """
  mated, rank, _, _ = _mated_rank_and_score(scores, identities, probe_identities)
  if not mated.any():
    raise ValueError("no probe belongs to an enrolled identity; CMC needs mated probes")
  r = rank[mated]
  return np.array([np.mean(r <= k) for k in range(1, max_rank + 1)])


def cmc_metrics(
  scores, identities, probe_identities, ranks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
  """``rank_{r}`` identification rates for the given ranks plus ``num_mated``."""
  curve = cmc_curve(scores, identities, probe_identities, max(ranks))
  mated = _mated_rank_and_score(scores, identities, probe_identities)[0]
  return {**{f"rank_{r}": float(curve[r - 1]) for r in ranks}, "num_mated": float(mated.sum())}


def fpir_threshold(nonmated_top_scores: np.typing.ArrayLike, target_fpir: float) -> float:
  """Loosest threshold whose FPIR on these non-mated probes is <= ``target_fpir``.

  Placed halfway between the highest rejected score and the next distinct score above
  it, so that it transfers evenly to new data.
  """
  s = np.sort(np.asarray(nonmated_top_scores, np.float64).reshape(-1))[::-1]
  if s.size == 0:
    raise ValueError("need non-mated probes to set an open-set threshold")
  allowed = int(np.floor(target_fpir * s.size + 1e-9))
  if allowed >= s.size:
    return float(-np.inf)
  rejected = s[allowed]
  above = s[s > rejected]
  if above.size == 0:
    return float(np.nextafter(rejected, np.inf))
  return float(0.5 * (rejected + above.min()))


def open_set_at_threshold(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
  threshold: float,
  rank: int = 1,
) -> dict[str, float]:
  """FPIR, FNIR and DIR at a given threshold and rank.

  Returns:
    ``threshold``, ``fpir``, ``fnir``, ``dir``, ``num_mated``, ``num_nonmated``
    (rates over an empty group are NaN).
  """
  mated, r, ms, top = _mated_rank_and_score(scores, identities, probe_identities)
  hit = mated & (r <= rank) & (ms >= threshold)
  fnir = float(1 - hit[mated].mean()) if mated.any() else float("nan")
  fpir = float(np.mean(top[~mated] >= threshold)) if (~mated).any() else float("nan")
  return {
    "threshold": float(threshold),
    "fpir": fpir,
    "fnir": fnir,
    "dir": 1 - fnir,
    "num_mated": float(mated.sum()),
    "num_nonmated": float((~mated).sum()),
  }


def open_set_curve(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
  rank: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(fpir, fnir, thresholds) at every distinct non-mated top score (the open-set DET)."""
  mated, r, ms, top = _mated_rank_and_score(scores, identities, probe_identities)
  if not mated.any() or mated.all():
    raise ValueError("the open-set curve needs both mated and non-mated probes")
  thr = np.r_[np.inf, np.unique(top[~mated])[::-1]]
  nm = np.sort(top[~mated])
  fpir = 1 - np.searchsorted(nm, thr, side="left") / nm.size
  good = np.sort(np.where(r[mated] <= rank, ms[mated], -np.inf))
  fnir = np.searchsorted(good, thr, side="left") / good.size
  return fpir, fnir, thr


def fnir_at_fpir(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
  fpirs: Sequence[float] = (1e-1, 1e-2),
  rank: int = 1,
) -> dict[str, float]:
  """FNIR and DIR at target FPIRs with thresholds set on these same probes (a curve summary).

  For a decision threshold to report on test, set it on validation with `fpir_threshold`
  (or use `open_set_report`). A target FPIR needs at least 1 / FPIR non-mated probes;
  below that the values are NaN and ``..._supported`` is 0.0.

  Returns:
    Flat dict with, for each f (formatted ``f"{f:.0e}"``): ``fnir_at_fpir_{f}``,
    ``dir_at_fpir_{f}``, ``threshold_at_fpir_{f}``, ``fnir_at_fpir_{f}_supported``.
  """
  mated, _, _, top = _mated_rank_and_score(scores, identities, probe_identities)
  num_nonmated = int((~mated).sum())
  out = {}
  for f in fpirs:
    key = f"{f:.0e}"
    if num_nonmated * f < 1 or not mated.any():
      out[f"fnir_at_fpir_{key}"] = out[f"dir_at_fpir_{key}"] = float("nan")
      out[f"threshold_at_fpir_{key}"] = float("nan")
      out[f"fnir_at_fpir_{key}_supported"] = 0.0
      continue
    t = fpir_threshold(top[~mated], f)
    r = open_set_at_threshold(scores, identities, probe_identities, t, rank)
    out[f"fnir_at_fpir_{key}"] = r["fnir"]
    out[f"dir_at_fpir_{key}"] = r["dir"]
    out[f"threshold_at_fpir_{key}"] = t
    out[f"fnir_at_fpir_{key}_supported"] = 1.0
  return out


def open_set_report(
  val_scores,
  val_identities,
  val_probe_identities,
  test_scores,
  test_identities,
  test_probe_identities,
  target_fpir: float = 0.01,
  rank: int = 1,
) -> dict[str, float]:
  """Reject threshold for ``target_fpir`` set on validation non-mated probes, applied to test.

  Returns:
    `open_set_at_threshold` on test at that threshold, plus ``target_fpir`` and
    ``val_fpir`` (the FPIR the threshold achieves on validation).
  """
  mated, _, _, top = _mated_rank_and_score(val_scores, val_identities, val_probe_identities)
  num_nonmated = int((~mated).sum())
  if num_nonmated * target_fpir < 1:
    raise ValueError(
      f"target_fpir={target_fpir} needs at least {int(np.ceil(1 / target_fpir))} non-mated "
      f"validation probes, got {num_nonmated}"
    )
  t = fpir_threshold(top[~mated], target_fpir)
  out = open_set_at_threshold(test_scores, test_identities, test_probe_identities, t, rank)
  out["target_fpir"] = float(target_fpir)
  out["val_fpir"] = float(np.mean(top[~mated] >= t))
  return out


def probe_identity_pairs(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
  """Flatten a [P, I] score matrix into (scores, labels) with label 1 where the identity matches.

  Use it on validation probes to fit a calibrator for `top_candidates`.
  """
  s = np.asarray(scores, np.float64)
  ids = np.asarray(identities).reshape(-1)
  pid = np.asarray(probe_identities).reshape(-1)
  return s.reshape(-1), (pid[:, None] == ids[None, :]).astype(np.int64).reshape(-1)


def top_candidates(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  k: int = 5,
  calibrator: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
  """The k best identities per probe, with calibrated match probabilities.

  Args:
    scores: [P, I] probe-identity scores.
    identities: [I] enrolled identities.
    k: list length (capped at I).
    calibrator: maps scores to P(match), e.g. ``calibration.fit_calibrator(*probe_identity_pairs(
      val_scores, ...), "platt")``, fitted on validation; None leaves probabilities NaN.

  Returns:
    ``identities`` [P, k], ``scores`` [P, k], ``probabilities`` [P, k], best first.
  """
  s = np.asarray(scores, np.float64)
  ids = np.asarray(identities).reshape(-1)
  k = min(k, ids.size)
  # Stable sort on the negated score keeps the lower column first among ties.
  order = np.argsort(-s, axis=1, kind="stable")[:, :k]
  top = np.take_along_axis(s, order, axis=1)
  probs = calibrator(top) if calibrator is not None else np.full_like(top, np.nan)
  return {"identities": ids[order], "scores": top, "probabilities": np.asarray(probs)}


def top1_correct(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
) -> np.ndarray:
  """[P] 1 where a probe's top-1 candidate is its own identity (never for non-mated probes).

  The outcome that an identification-level calibrator predicts: P(top-1 is right).
  """
  mated, rank, _, _ = _mated_rank_and_score(scores, identities, probe_identities)
  return (mated & (rank == 1)).astype(np.int64)


def open_set_statistic(
  scores: np.typing.ArrayLike,
  identities: np.typing.ArrayLike,
  probe_identities: np.typing.ArrayLike,
  threshold: float,
  rank: int = 1,
) -> Callable[[np.ndarray], dict[str, float]]:
  """FPIR, FNIR, DIR at a fixed threshold and CMC rank 1, of weighted probes.

  For `clustered.subject_bootstrap` over probe identities (``subjects_b=None``): each
  probe counts as often as its weight. The threshold is not refitted; with unit weights
  the values equal `open_set_at_threshold` and `cmc_metrics`.

  Returns:
    A function of ``[P]`` weights giving ``fpir``, ``fnir``, ``dir`` and ``cmc_rank_1``
    (NaN when a replicate has no mated or no non-mated probe).
  """
  mated, r, ms, top = _mated_rank_and_score(scores, identities, probe_identities)
  hit = mated & (r <= rank) & (ms >= threshold)
  first = mated & (r == 1)
  accept = ~mated & (top >= threshold)

  def statistic(weights):
    w = np.asarray(weights, np.float64).reshape(-1)
    wm, wn = w @ mated, w @ ~mated
    nan = float("nan")
    d = float(w @ hit / wm) if wm > 0 else nan
    return {
      "fpir": float(w @ accept / wn) if wn > 0 else nan,
      "fnir": 1 - d,
      "dir": d,
      "cmc_rank_1": float(w @ first / wm) if wm > 0 else nan,
    }

  return statistic


def top1_calibration(
  val_scores, val_probe_ids, test_scores, test_probe_ids, identities, platt, num_bins: int = 10
) -> dict:
  """Calibration of P(top-1 candidate is right), one outcome per probe, against the base rate.

  Two calibrated probabilities of each test probe's top-1 candidate: the all-pairs Platt
  map of the Top-k lists (`platt`, fitted on validation probe-identity pairs), and a
  Platt map refitted on validation top-1 scores and outcomes. The reference is the
  base-rate predictor: the validation top-1 correctness rate for every test probe.
  Everything is fitted on validation.

  Returns:
    ``metrics`` (``{name: calibration_metrics}`` for ``platt_all_pairs``,
    ``platt_top1`` and ``base_rate``, plus ``num_probes`` and ``correct_rate``),
    ``platt_top1`` (the refitted parameters, NaN when validation has one outcome only),
    ``val_rate``, ``probs`` (the test probabilities by name) and ``correct`` ([P] 0/1).
  """
  val_top = top_candidates(val_scores, identities, 1)["scores"][:, 0]
  val_correct = top1_correct(val_scores, identities, val_probe_ids)
  test_top = top_candidates(test_scores, identities, 1)["scores"][:, 0]
  correct = top1_correct(test_scores, identities, test_probe_ids)
  rate = float(val_correct.mean())
  probs = {"platt_all_pairs": calibration.platt_apply(platt, test_top)}
  if 0 < val_correct.sum() < val_correct.size:
    refit = calibration.platt_fit(val_top, val_correct)
    probs["platt_top1"] = calibration.platt_apply(refit, test_top)
  else:
    refit = {"slope": float("nan"), "intercept": float("nan")}
  probs["base_rate"] = np.full(correct.size, rate)
  out = {k: calibration.calibration_metrics(p, correct, num_bins) for k, p in probs.items()}
  out["num_probes"] = float(correct.size)
  out["correct_rate"] = float(correct.mean())
  return {"metrics": out, "platt_top1": refit, "val_rate": rate, "probs": probs, "correct": correct}


def identification_statistic(
  scores, identities, probe_identities, threshold: float, top1: dict, num_bins: int = 10
) -> Callable[[np.ndarray], dict[str, float]]:
  """`open_set_statistic` plus the `top1_calibration` metrics of weighted probes.

  For `clustered.subject_bootstrap` over probe identities; the calibration metrics are
  named ``top1_{metric}_{calibrator}``.
  """
  decision = open_set_statistic(scores, identities, probe_identities, threshold)

  def statistic(weights):
    out = decision(weights)
    for name, p in top1["probs"].items():
      m = calibration.calibration_metrics(p, top1["correct"], num_bins, weights)
      out.update({f"top1_{k}_{name}": v for k, v in m.items()})
    return out

  return statistic


def candidate_lists(
  top: Mapping[str, np.ndarray],
  probe_identities: np.typing.ArrayLike,
  names: Sequence[str],
  enrolled: np.typing.ArrayLike,
  threshold: float,
  probe_records: np.typing.ArrayLike | None = None,
) -> list[dict]:
  """Each probe's Top-k list and decision at `threshold`, as JSON-ready rows.

  Args:
    top: `top_candidates` of the probes.
    probe_identities: [P] true identities (outsiders are not in `enrolled`).
    names: identity index -> display name.
    enrolled: the enrolled identities (the columns of the scores).
    threshold: the reject threshold on the top-1 score.
    probe_records: [P] record indices, kept in each row as ``probe_record``.

  Returns:
    Per probe: ``true_identity`` (its name, "(outsider)" appended when never enrolled),
    ``mated``, ``decision`` (the top-1 name, or "unknown" below the threshold),
    ``correct`` (accepting the right person, or rejecting an outsider) and ``top`` (the
    candidates with ``identity``, ``score`` and ``probability``).
  """
  pid = np.asarray(probe_identities).reshape(-1)
  enrolled_set = {int(i) for i in np.asarray(enrolled).reshape(-1)}
  records = np.arange(pid.size) if probe_records is None else np.asarray(probe_records)
  rows = []
  for n, ident in enumerate(pid.tolist()):
    mated = ident in enrolled_set
    first = int(top["identities"][n, 0])
    accepted = bool(top["scores"][n, 0] >= threshold)
    candidates = zip(top["identities"][n], top["scores"][n], top["probabilities"][n], strict=True)
    rows.append(
      {
        "probe_record": int(records[n]),
        "true_identity": names[ident] if mated else f"{names[ident]} (outsider)",
        "mated": mated,
        "decision": names[first] if accepted else "unknown",
        "correct": bool(accepted == mated and (not accepted or first == ident)),
        "top": [
          {"identity": names[int(i)], "score": float(s), "probability": float(p)}
          for i, s, p in candidates
        ],
      }
    )
  return rows


def identification_report(
  val_scores,
  val_probe_ids,
  test_scores,
  test_probe_ids,
  identities,
  *,
  target_fpir: float,
  fpirs: Sequence[float] = (1e-1, 1e-2),
  top_k: int = 5,
  num_bins: int = 10,
  num_resamples: int = 1000,
  seed: int = 0,
  cosine: bool = True,
) -> dict:
  """The open-set protocol: everything fitted on validation probes, reported on test.

  Calibration is judged per probe, at the identification level: the probability of its
  top-1 candidate against whether that candidate is right (a non-mated probe's never
  is), by ECE, Brier score and log loss beside the base-rate predictor (the validation
  top-1 correctness rate for every probe). Over all probe-identity pairs only about one
  in I is a match, so there a constant base rate already scores an ECE near zero; that
  figure is kept as secondary only.

  Fitted on validation: the reject threshold at `target_fpir` (`open_set_report`) and
  the Platt map of P(match | score) over probe-identity pairs (`top1_calibration` adds
  a top-1 refit). Reported on test: the decision at that threshold, FNIR at `fpirs`,
  the CMC, top-1 calibration against the base rate, and 95% intervals from a bootstrap
  over test probe identities drawn within the mated and non-mated groups (the
  independent units), with the threshold and calibrators held fixed.

  Args:
    val_scores, test_scores: [P, I] probe-identity scores of each split's probes.
    val_probe_ids, test_probe_ids: [P] the probes' identities (outsiders are not in
      `identities`).
    identities: [I] the enrolled identities (the score columns).
    cosine: the scores are cosines; adds the raw (s + 1) / 2 calibration as secondary.

  Returns:
    ``test`` and ``val`` (the metrics), ``top`` (the test probes' `top_candidates` with
    Platt probabilities) and ``top1`` (`top1_calibration`).
  """
  cols = identities
  val_s, val_y = probe_identity_pairs(val_scores, cols, val_probe_ids)
  platt = calibration.platt_fit(val_s, val_y)
  test_s, test_y = probe_identity_pairs(test_scores, cols, test_probe_ids)
  decision = open_set_report(
    val_scores, cols, val_probe_ids, test_scores, cols, test_probe_ids, target_fpir
  )
  top1 = top1_calibration(
    val_scores, val_probe_ids, test_scores, test_probe_ids, cols, platt, num_bins
  )
  boot = clustered.subject_bootstrap(
    identification_statistic(
      test_scores, cols, test_probe_ids, decision["threshold"], top1, num_bins
    ),
    test_probe_ids,
    strata=np.isin(test_probe_ids, cols),
    num_resamples=num_resamples,
    seed=seed,
  )
  test = {
    "at_val_threshold": decision,
    "fnir_at_fpir_on_test": fnir_at_fpir(test_scores, cols, test_probe_ids, fpirs=fpirs),
    "cmc": cmc_metrics(test_scores, cols, test_probe_ids, ranks=(1, 5, 10)),
    # Per probe: P(top-1 candidate is right) against whether it is (outsiders never).
    "calibration_top1": top1["metrics"],
    "intervals": boot,
    # Secondary: over every probe-identity pair, where 1 pair in I is a match, so a
    # constant base rate already scores a near-zero ECE (see calibration_top1).
    "secondary_calibration_all_pairs_platt": calibration.calibration_metrics(
      calibration.platt_apply(platt, test_s), test_y, num_bins
    ),
    "secondary_calibration_all_pairs_base_rate": calibration.base_rate_metrics(
      test_y, float(np.mean(val_y)), num_bins
    ),
  }
  if cosine:
    test["secondary_calibration_all_pairs_raw_cosine"] = calibration.calibration_metrics(
      np.clip((test_s + 1) / 2, 0, 1), test_y, num_bins
    )
  val = {
    "cmc": cmc_metrics(val_scores, cols, val_probe_ids, ranks=(1, 5, 10)),
    "platt": platt,
    "platt_top1": top1["platt_top1"],
    "top1_correct_rate": top1["val_rate"],
  }
  top = top_candidates(test_scores, cols, top_k, lambda x: calibration.platt_apply(platt, x))
  return {"test": test, "val": val, "top": top, "top1": top1}


def centroid_metrics(
  gallery_emb, gallery_ids, probe_emb, probe_ids, target_fpir: float, score: str = "cosine"
) -> dict[str, float]:
  """DIR at `target_fpir` and CMC rank 1 of probes against gallery centroids (for selection)."""
  templates, cols = identity_templates(gallery_emb, gallery_ids, mode="centroid")
  s, c = identity_scores(probe_emb, templates, cols, score)
  out = fnir_at_fpir(s, c, probe_ids, fpirs=(target_fpir,))
  return {
    "dir_at_target_fpir": out[f"dir_at_fpir_{target_fpir:.0e}"],
    "cmc_rank_1": cmc_metrics(s, c, probe_ids, ranks=(1,))["rank_1"],
  }


def example_probes(probe_identities, identities, n: int, seed: int = 0) -> list[int]:
  """Indices of the first `n` mated and then the first `n` non-mated probes in a seeded order."""
  mated = np.isin(np.asarray(probe_identities), np.asarray(identities))
  order = np.random.default_rng([seed, 0xE8]).permutation(len(mated))
  return [int(i) for i in order if mated[i]][:n] + [int(i) for i in order if not mated[i]][:n]
