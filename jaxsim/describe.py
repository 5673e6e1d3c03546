"""Findings in words: each function turns one evaluation protocol's output into sentences.

A sentence says only what its test can show: intervals are named with their units
(subjects), a permutation test that does not reject is reported as "no evidence",
and descriptive statistics are labelled as such. `report.write_report_md` puts the
sentences first in report.md.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from jaxsim import report
from jaxsim.evaluate import verification


def semantic_gap_sentences(out: Mapping[str, Any]) -> list[str]:
  """`cross_modal.semantic_gap_report` in words: AUC, permutation verdict, gap, null tests."""
  o, m, pt = out["test_overlap"], out["memorisation"], out["permutation_test"]
  n = int(o["num_subjects"])
  verdict = (
    f"the test finds cross-modal information (p = {pt['p_value']:.2g})"
    if pt["p_value"] < 0.05
    else f"the data show no evidence of cross-modal information (p = {pt['p_value']:.2g}); "
    f"they leave open an AUC of up to {o['auc_ci_high']:.3f}, the upper end of the interval"
  )
  sentences = [
    f"Cross-modal (face -> fingerprint) test AUC {o['auc']:.3f} (95% CI "
    f"{o['auc_ci_low']:.3f}-{o['auc_ci_high']:.3f} by a bootstrap over the {n} test subjects; "
    f"{int(o['num_genuine'])} genuine and {int(o['num_impostor'])} impostor pairs). "
    f"Identity permutation test over every test face against every test fingerprint "
    f"({int(pt['num_permutations'])} permutations of the fingerprints' subjects; chance "
    f"AUC {pt['null_mean']:.3f}, 95th percentile {pt['null_q95']:.3f}): {verdict}.",
    f"On training subjects' pairs the AUC is {m['train_auc']:.3f}, a memorisation gap of "
    f"{m['auc_gap']:.3f} (95% CI {m['auc_gap_ci_low']:.3f}-{m['auc_gap_ci_high']:.3f}, "
    f"train and test subjects resampled). Decidability d' = {o['decidability']:.3f}, "
    f"Bhattacharyya {o['bhattacharyya']:.3f}, overlap coefficient "
    f"{o['overlap_coefficient']:.3f}, KS {o['ks_statistic']:.3f} (descriptive: these measure "
    "distance from the null, so their bootstrap intervals, in metrics.json, lean away from "
    "it; the AUC interval and the permutation test carry the inference).",
    report.null_test_sentence(out["isotropy_genuine"], "genuine test distances"),
    report.null_test_sentence(out["isotropy_impostor"], "impostor test distances"),
  ]
  if "contrastive_train" in out:
    c0, c1 = out["contrastive_train"], out["contrastive_test"]
    sentences.append(
      f"Contrastive margin {c0['margin']:g} on unit vectors (distance <= 2): "
      f"{100 * c0['impostor_active_fraction']:.0f}% of impostor pairs stay active; "
      f"the do-nothing loss (every pair at distance {c0['do_nothing_distance']:.2f}) is "
      f"{c0['do_nothing_loss']:.3f}; the trained model's loss is {c0['loss']:.3f} on "
      f"training pairs and {c1['loss']:.3f} on test pairs."
    )
  return sentences


def fusion_sentences(out: Mapping[str, Any]) -> list[str]:
  """`fusion.matchers_and_fusion` in words: each matcher, the chosen fusion, every candidate."""
  b = out["fusion_best"]
  num_subjects = int(b["num_subjects"])
  matchers = [k for k in out if k not in ("fusion", "fusion_best")]

  def one(name, r):
    return (
      f"{name} AUC {r['auc']:.3f} ({r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f}), EER "
      f"{r['eer']:.3f} ({r['eer_ci_low']:.3f}-{r['eer_ci_high']:.3f}), accuracy at the "
      f"validation threshold {r['accuracy']:.3f} ({r['accuracy_ci_low']:.3f}-"
      f"{r['accuracy_ci_high']:.3f})"
    )

  chosen = f"{b['rule']}/{b['normalization']}"
  table = ["| rule / normalisation | val AUC (cross-fitted) | test AUC | 95% CI (subjects) |"]
  table.append("|---|---|---|---|")
  for k, r in out["fusion"].items():
    name = k + (" (chosen)" if k == chosen else "")
    table.append(
      f"| {name} | {r['val_auc_crossfit']:.4f} | {r['auc']:.4f} | "
      f"{r['auc_ci_low']:.4f}-{r['auc_ci_high']:.4f} |"
    )
  return [
    f"Unimodal verifiers on test subjects (95% CIs by a bootstrap over the {num_subjects} test "
    f"subjects): {'; '.join(one(m, out[m]) for m in matchers)}.",
    f"Score-level fusion, rule and normalisation chosen on validation alone (cross-fitted "
    f"over validation subjects): {b['rule']} with {b['normalization']} (validation AUC "
    f"{b['val_auc']:.4f}). On test it gives AUC {b['auc']:.4f} ({b['auc_ci_low']:.4f}-"
    f"{b['auc_ci_high']:.4f}), EER {b['eer']:.4f}; over the better single matcher on "
    f"validation ({b['best_single_on_val']}) the AUC gain is {b['auc_gain_over_best_single']:.4f}"
    f" ({b['auc_gain_ci_low']:.4f}-{b['auc_gain_ci_high']:.4f}). Every candidate, for "
    "reference (the test column chose nothing):\n\n" + "\n".join(table),
  ]


def one_shot_data_sentence(source: str, names: Mapping[str, list], d: Mapping) -> str:
  """The Omniglot split in words: `source` described, alphabet `names` per split, and
  the counts `d` (`num_alphabets_train`, `num_characters_train`, ...)."""
  return (
    f"Data: {source}. Split by alphabet and drawer (Koch et al.): "
    f"{int(d['num_alphabets_train'])} training alphabets "
    f"({int(d['num_characters_train'])} characters, {int(d['num_train_drawers'])} drawers, "
    f"{int(d['num_images_train'])} images); validation alphabets {', '.join(names['val'])}; "
    f"test alphabets {', '.join(names['test'])}, from the other drawers only. Published "
    "reference points use other data (the evaluation alphabets) and are not comparable "
    "figure for figure."
  )


def one_shot_sentence(name: str, m: Mapping[str, Any]) -> str:
  """A one-shot model's test figures (`tasks.omniglot`): runs, then episodes, in words."""
  ep, runs, tr = m["episodes"], m["one_shot_runs"], m["train"]
  line = (
    f"{name} ({int(tr['steps'])} training steps, checkpoint of step "
    f"{int(tr.get('select_best_step', tr['steps']))} chosen on validation alphabets): "
    f"{int(runs['num_runs'])} built 20-way one-shot runs of the test alphabets "
    f"{report.with_ci(runs, 'accuracy', 3)} (bootstrap over runs); test-alphabet episodes "
    f"({int(next(iter(ep.values()))['num_episodes'])} each, 95% CI over episodes, given "
    f"these alphabets): {_episode_figures(ep)}."
  )
  if "one_shot_runs_given" in m:
    g = m["one_shot_runs_given"]
    line += f" On the {int(g['num_runs'])} runs in {g['root']}: {report.with_ci(g, 'accuracy', 3)}."
  return line


def pixel_baseline_sentence(m: Mapping[str, Any], size: int) -> str:
  """The raw-pixel baseline's test figures (`oneshot.pixel_baseline`), in words."""
  runs = m["one_shot_runs"]
  return (
    f"Classical baseline, no learning: nearest class prototype on raw {size}x{size} pixels "
    f"({m['metric']} distance, centring {m['center']}, both chosen on validation episodes): "
    f"built runs {report.with_ci(runs, 'accuracy', 3)}; test-alphabet episodes "
    f"{_episode_figures(m['episodes'])}."
  )


def _episode_figures(episodes: Mapping[str, Any]) -> str:
  """ "5-way 1-shot 0.432 [0.418, 0.446], ..." from `{"5way_1shot": {accuracy, ...}}`."""
  return ", ".join(
    f"{k.replace('way_', '-way ').replace('shot', '-shot')} {report.with_ci(v, 'accuracy', 3)}"
    for k, v in episodes.items()
  )


def verification_sentence(name: str, m: Mapping[str, Any], fars) -> str:
  """One verification model's test figures in words (`face_verify`'s metrics of a model:
  `test` with identity-level intervals, `inference`, `train`)."""
  r, info = m["test"], m["inference"]
  ci = functools.partial(report.with_ci, r)
  cm = [[int(r["tn"]), int(r["fp"])], [int(r["fn"]), int(r["tp"])]]
  tar = "".join(
    f", TAR@FAR={f:g} {ci(k)}"
    for f in fars
    if (k := f"tar_at_far_{verification.far_key(f)}") + "_ci_low" in r
  )
  line = (
    f"{name}: test AUC {ci('auc')}, EER {ci('eer')}{tar}, at the validation threshold "
    f"accuracy {ci('accuracy')}, precision {r['precision']:.4f}, recall {r['recall']:.4f}, "
    f"F1 {r['f1']:.4f}, confusion [[tn, fp], [fn, tp]] = {cm}; {int(info['num_pairs'])} test "
    f"pairs scored at {info['pairs_per_second']:,.0f} pairs/s; 95% CI over "
    f"{int(r['ci_num_identities'])} test identities (bootstrap over identities, "
    f"{int(r['ci_num_resamples'])} resamples); trained for {int(m['train']['steps'])} steps"
    + (
      f", checkpoint of step {int(m['train']['select_best_step'])} chosen on validation"
      if "select_best_step" in m["train"]
      else ""
    )
  )
  if "pair_logits_pairs_per_second" in info:
    line += (
      f" (features once, then the L1 head; the full pair network on "
      f"{int(info['pair_logits_pairs'])} pairs runs at "
      f"{info['pair_logits_pairs_per_second']:,.0f} pairs/s, logits equal to "
      f"{info['pair_logits_max_abs_diff']:.1e})"
    )
  return line + "."


def verification_data_sentence(what: str, split_seed: int, threshold_method: str, d) -> str:
  """A verification task's data, split and pair lists in words (face_verify's `data`)."""
  return (
    f"Data: {what}. Identity-disjoint split (seed {split_seed}): "
    f"{int(d['num_identities_train'])} train, {int(d['num_identities_val'])} val, "
    f"{int(d['num_identities_test'])} test identities; {int(d['num_val_pairs'])} val and "
    f"{int(d['num_test_pairs'])} test pairs from fixed lists (genuine fraction "
    f"{d['val_genuine_fraction']:.3f} and {d['test_genuine_fraction']:.3f}). Thresholds "
    f"({threshold_method}) are set on validation and applied to test."
  )


def ensemble_sentence(members, m: Mapping[str, Any]) -> str:
  """An ensemble's test figures in words (`evaluate_scores` metrics of the fused scores)."""
  r = m["test"]
  ci = functools.partial(report.with_ci, r)
  return (
    f"ensemble of {', '.join(members)} (each member's scores z-normalised "
    f"on validation pairs, then averaged): test AUC {ci('auc')}, EER {ci('eer')}, at the "
    f"validation threshold accuracy {ci('accuracy')}; validation AUC {m['val']['auc']:.4f}."
  )


def fusion_sentence(name: str, m: Mapping[str, Any]) -> str:
  """A learned-plus-classical fusion (`baselines.fuse_with_best`) and its test figures."""
  f, r = m["fusion"], m["test"]
  ci = functools.partial(report.with_ci, r)
  how = (
    f"fused with weight {f['weight']:.2f} on the learned z-score"
    if f["fused"]
    else "not fused (weight 1.00: the learned matcher alone)"
  )
  return (
    f"{name}: {how}, chosen on validation (cross-fitted over validation identities, AUC "
    f"{f['val_auc_cross_fitted']:.4f} fused against {f['learned_val_auc_cross_fitted']:.4f} "
    f"learned alone): test AUC {ci('auc')}, EER {ci('eer')}."
  )


def learned_plus_baseline_sentence(rows: Mapping[str, Mapping[str, Any]]) -> str:
  """face_fp's verifiers each fused with their best baseline (`baselines.fuse_with_best`)."""
  parts = []
  for modality, r in rows.items():
    how = f"weight {r['weight']:.2f} on the learned z-score" if r["fused"] else "not fused"
    parts.append(
      f"{modality} + {r['baseline']}: {how} (cross-fitted val AUC {r['val_auc_cross_fitted']:.4f} "
      f"fused, {r['learned_val_auc_cross_fitted']:.4f} learned alone), test AUC "
      f"{report.with_ci(r, 'auc')}"
    )
  return (
    "Each verifier fused with its modality's baseline best on validation, where a check "
    "cross-fitted over validation subjects says it helps: " + "; ".join(parts) + "."
  )


def baseline_comparison_sentence(c: Mapping[str, Any]) -> str:
  """`baselines.compare_with_best`'s paired differences in words, with what each can show."""
  parts = []
  for name, r in c["rows"].items():
    lo, hi = r["auc_difference_ci_low"], r["auc_difference_ci_high"]
    verdict = "excludes 0" if lo > 0 or hi < 0 else "includes 0"
    parts.append(f"{name} {r['auc_difference']:+.4f} [{lo:+.4f}, {hi:+.4f}] ({verdict})")
  n = int(next(iter(c["rows"].values()))["num_subjects"])
  return (
    f"Test AUC minus that of {c['baseline']} (the baseline best on validation), on the same "
    f"pairs, 95% paired bootstrap interval over {n} test identities: " + "; ".join(parts) + "."
  )
