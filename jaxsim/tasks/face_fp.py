"""Face <-> fingerprint: cross-modal metric learning, its null tests, fusion and a positive control.

    python -m experiments.run --config=face_fp            # built-in data, <= 15 min on 2 CPU cores
    python -m experiments.run --config=face_fp:runlocal   # the same pipeline in < 2 min
    python -m experiments.run --config=face_fp:seed       # source project 1's recipe

What one run does (all splits by identity, fixed by `config.seed`; manifest in
`split_manifest.json`):

1. Cross-modal two-tower model (face tower `a`, fingerprint tower `b`, separate weights,
   L2-normalised embeddings) trained on the train subjects at correlation
   `data.correlation` (0: a person's fingerprint is independent of their face). On fixed
   pair lists (drawn once per split, half genuine) it reports the test cross-modal AUC
   with a bootstrap interval, the train-pair minus test-pair AUC (memorisation), the
   overlap statistics of genuine and impostor distances (`evaluate.overlap`) and the test
   of both distance samples against the exact sqrt(2) null for random unit vectors.
2. Unimodal Siamese verifiers for faces and for fingerprints of the same subjects, with
   test metrics at a threshold chosen on validation, and their score-level fusion
   (`evaluate.fusion`: normalisation and rules fitted on validation, compared on test).
   The pair lists are over record pairs, and record i of both modalities belongs to the
   same subject, so each pair has a face score and a fingerprint score.
3. A correlation sweep: the same cross-modal recipe on data with rho in
   `sweep.correlations`, test AUC against rho (the positive control: the pipeline learns
   when a shared latent exists).

Files: `metrics.json`, `report.md`, `distances_test.png`, `sweep_auc.png`, one sub-workdir
per trained model (`cross_modal/`, `face/`, `fingerprint/`, `sweep/rho_*`) with its
JSONL log and checkpoints. Re-running the same workdir resumes each model.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxsim import baselines, inference, report
from jaxsim import train as train_lib
from jaxsim.data import pipeline, sampling, splits
from jaxsim.data.sources import ArrayImageSource
from jaxsim.data.sources.face_fingerprint import PairedArrays, load_paired_data
from jaxsim.evaluate import clustered, cross_modal, fusion, overlap, verification

# The run's summary table (`report.summary_table`): label -> path in the metrics.
HEADLINE = {
  "cross-modal test AUC (subjects)": "cross_modal.test_overlap.auc",
  "permutation p (no information)": "cross_modal.permutation_test.p_value",
  "memorisation gap (train - test AUC)": "cross_modal.memorisation.auc_gap",
  "face verifier test AUC": "unimodal.face.auc",
  "fingerprint verifier test AUC": "unimodal.fingerprint.auc",
  "fusion rule (chosen on val)": "fusion_best.rule",
  "fusion test AUC": "fusion_best.auc",
  "smallest rho detected (CI > 0.5)": "sweep.smallest_detected_correlation",
}

# ---------------------------------------------------------------------------
# Training


def _cross_modal_distances(model, variables, data: PairedArrays, pairs) -> np.ndarray:
  """Euclidean distances between face[a] (tower a) and fingerprint[b] (tower b)."""
  ea, eb = inference.embed_pairs(
    model, variables, data.faces, data.fingerprints, pairs["a"], pairs["b"]
  )
  return np.linalg.norm(ea - eb, axis=-1)


def train_cross_modal(
  config: Any,
  data: PairedArrays,
  records: Mapping[str, np.ndarray],
  pairs: Mapping[str, Mapping[str, np.ndarray]],
  workdir: pathlib.Path,
) -> tuple[Any, dict, dict]:
  """Trains the two-tower model; returns (model, variables of the selected state, info)."""
  ds = pipeline.two_tower_batches(
    data,
    records["train"],
    batch_size=config.train.batch_size,
    seed=config.train.seed,
    augment=config.data.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  it = pipeline.make_iterator(ds, num_threads=1)
  if config.loss.name == "pair_contrastive":
    it = pipeline.CrossModalPairs(it, config.loss.positive_fraction)

  def val_auc(model, variables):
    d = _cross_modal_distances(model, variables, data, pairs["val"])
    return {"val_auc": verification.roc_auc(-d, pairs["val"]["label"])}

  return train_lib.fit_model(
    workdir.name,
    config.model,
    config.loss.to_dict(),
    config.train,
    it,
    train_lib.PAIR_INPUTS,
    workdir.parent,
    eval_fn=val_auc,
  )


def train_unimodal(
  config: Any,
  source: ArrayImageSource,
  records: Mapping[str, np.ndarray],
  val_pairs: Mapping[str, np.ndarray],
  workdir: pathlib.Path,
) -> tuple[Any, dict]:
  """Trains a Siamese verifier on one modality with PxK batches (selected on validation)."""
  u = config.unimodal
  tcfg = ml_collections.ConfigDict(config.train.to_dict())
  tcfg.steps, tcfg.batch_size, tcfg.learning_rate = u.steps, u.p * u.k, u.learning_rate
  tcfg.warmup_steps = min(tcfg.warmup_steps, u.steps // 10)
  tcfg.eval_every = min(tcfg.eval_every, u.steps) if tcfg.eval_every else 0
  tcfg.checkpoint_every = min(tcfg.checkpoint_every, u.steps)
  tcfg.best_metric = "val_auc"
  ds = pipeline.pxk_batches(
    source,
    records["train"],
    p=u.p,
    k=u.k,
    seed=tcfg.seed,
    augment=u.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )

  def val_auc(model, variables):
    s = _unimodal_scores(model, variables, source.images, val_pairs)
    return {"val_auc": verification.roc_auc(s, val_pairs["label"])}

  model, variables, _ = train_lib.fit_model(
    workdir.name,
    {"kind": "siamese", "encoder": u.encoder.to_dict()},
    u.loss.to_dict(),
    tcfg,
    pipeline.make_iterator(ds, num_threads=1),
    train_lib.SINGLE_INPUTS,
    workdir.parent,
    eval_fn=val_auc,
  )
  return model, variables


def _unimodal_scores(model, variables, images: np.ndarray, pairs) -> np.ndarray:
  """Cosine similarity of the shared-encoder embeddings of images[a] and images[b]."""
  ea, eb = inference.embed_pairs(
    model, variables, images, images, pairs["a"], pairs["b"], ("a", "a")
  )
  return np.sum(ea * eb, axis=-1)


# ---------------------------------------------------------------------------
# Evaluation


def _test_records_distances(model, variables, data: PairedArrays, records: np.ndarray):
  """Every test face (tower a) against every test fingerprint (tower b): distances, subjects."""
  ea = inference.embed(model, variables, data.faces[records], "a")
  eb = inference.embed(model, variables, data.fingerprints[records], "b")
  dist = np.linalg.norm(ea[:, None, :] - eb[None, :, :], axis=-1)
  return dist, data.identities[records], ea.shape[1]


def evaluate_cross_modal(
  config: Any, model, variables, data: PairedArrays, records, pairs, workdir: pathlib.Path
) -> tuple[dict, list[str], dict]:
  """The semantic-gap statistics of a trained cross-modal model, at the subject level.

  - AUC and overlap statistics of the fixed test pair list, 95% CIs by a bootstrap over
    test subjects; the identity permutation test of "no cross-modal information" on every
    test face against every test fingerprint.
  - The memorisation gap (train-pair AUC minus test-pair AUC), train and test subjects
    resampled within their own split.
  - The isotropy test against the sqrt(2) null on one distance per distinct record pair.
  """
  ev, seed = config.eval, config.seed
  dist = {k: _cross_modal_distances(model, variables, data, pairs[k]) for k in ("train", "test")}
  lab = {k: np.asarray(pairs[k]["label"]) for k in ("train", "test")}
  full, ids, dim = _test_records_distances(model, variables, data, records["test"])
  out = cross_modal.semantic_gap_report(
    dist,
    lab,
    _pair_subjects(data, pairs),
    full,
    (ids, ids),
    dim,
    ev.bootstrap_resamples,
    ev.permutations,
    seed,
  )
  if config.loss.name == "pair_contrastive":
    for k in ("train", "test"):
      out[f"contrastive_{k}"] = overlap.contrastive_diagnostics(dist[k], lab[k], config.loss.margin)
  figure = report.plot_distance_histograms(
    dist["test"][lab["test"] == 1],
    dist["test"][lab["test"] == 0],
    dim,
    workdir / "distances_test.png",
    title=f"Cross-modal test distances (rho = {data_correlation(config):g})",
  )
  return (
    out,
    _cross_modal_sentences(out),
    {"Cross-modal test distances vs the sqrt(2) null": figure},
  )


def _cross_modal_sentences(out: Mapping[str, Any]) -> list[str]:
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


def data_correlation(config: Any) -> float:
  return float(config.data.correlation) if config.data.source == "builtin" else math.nan


def _subject_verification(scores, labels, subjects, threshold, ev, seed) -> dict[str, float]:
  return clustered.subject_bootstrap(
    clustered.verification_statistic(scores, labels, threshold=threshold),
    *subjects,
    num_resamples=ev.bootstrap_resamples,
    seed=seed,
  )


def evaluate_unimodal_and_fusion(
  config: Any,
  scores: Mapping[str, Mapping[str, np.ndarray]],
  pairs,
  subjects: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[dict, list[str]]:
  """Each modality's verifier and their score-level fusion, everything chosen on validation.

  Thresholds, fusion normalisation and rule are fitted and chosen on the validation
  pairs (`fusion.select_fusion`, cross-fitted over validation subjects); test reports
  every rule and the chosen one with 95% CIs by a bootstrap over test subjects. Test
  labels enter nothing but the test figures.
  """
  ev, seed = config.eval, config.seed
  yv, yt = pairs["val"]["label"], pairs["test"]["label"]
  out: dict[str, Any] = {}
  for name in ("face", "fingerprint"):
    thr = verification.select_threshold(scores[name]["val"], yv, ev.threshold_method)
    out[name] = verification.metrics_at_threshold(scores[name]["test"], yt, thr)
    out[name].update(
      _subject_verification(scores[name]["test"], yt, subjects["test"], thr, ev, seed)
    )
    out[name]["val_auc"] = verification.roc_auc(scores[name]["val"], yv)
  names = ("face", "fingerprint")
  out["fusion"], best = fusion.fusion_report(
    np.stack([scores[n]["val"] for n in names], 1),
    yv,
    subjects["val"],
    np.stack([scores[n]["test"] for n in names], 1),
    yt,
    subjects["test"],
    tuple(ev.fusion_rules),
    tuple(ev.fusion_normalizations),
    ev.bootstrap_resamples,
    seed,
  )
  out["fusion_best"] = {**best, "best_single_on_val": names[best["best_single_on_val"]]}
  return out, _unimodal_sentences(out, int(out["fusion_best"]["num_subjects"]))


def _unimodal_sentences(out: Mapping[str, Any], num_subjects: int) -> list[str]:
  f, p, b = out["face"], out["fingerprint"], out["fusion_best"]

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
    f"subjects): {one('face', f)}; {one('fingerprint', p)}.",
    f"Score-level fusion, rule and normalisation chosen on validation alone (cross-fitted "
    f"over validation subjects): {b['rule']} with {b['normalization']} (validation AUC "
    f"{b['val_auc']:.4f}). On test it gives AUC {b['auc']:.4f} ({b['auc_ci_low']:.4f}-"
    f"{b['auc_ci_high']:.4f}), EER {b['eer']:.4f}; over the better single matcher on "
    f"validation ({b['best_single_on_val']}) the AUC gain is {b['auc_gain_over_best_single']:.4f}"
    f" ({b['auc_gain_ci_low']:.4f}-{b['auc_gain_ci_high']:.4f}). Every candidate, for "
    "reference (the test column chose nothing):\n\n" + "\n".join(table),
  ]


# ---------------------------------------------------------------------------
# The task


def _data_config(config: Any, section: Any) -> ml_collections.ConfigDict:
  """`config` with `data` overridden by `section.{num_subjects, images_per_subject,
  difficulty}` (0 / -1 = keep); built-in data only."""
  out = ml_collections.ConfigDict(config.to_dict())
  if config.data.source != "builtin":
    return out
  if section.num_subjects:
    out.data.num_subjects = section.num_subjects
  if section.images_per_subject:
    out.data.images_per_subject = section.images_per_subject
  if section.difficulty >= 0:
    out.data.face_difficulty = out.data.fingerprint_difficulty = section.difficulty
  return out


def prepare(config: Any, correlation: float | None = None, faces=None):
  """Data, identity split and fixed pair lists (train / val / test) of one data config."""
  data = load_paired_data(config.data, config.seed, correlation=correlation, faces=faces)
  groups, records = splits.split_records(
    data.identities, config.data.split.to_dict(), seed=config.seed
  )
  pairs = {
    name: sampling.sample_pairs(
      data.identities, config.eval.num_pairs, records=records[name], seed=config.seed + k
    )
    for k, name in enumerate(("train", "val", "test"))
  }
  return data, groups, records, pairs


def _pair_subjects(data: PairedArrays, pairs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  return {k: (data.identities[p["a"]], data.identities[p["b"]]) for k, p in pairs.items()}


def unimodal_and_fusion(config: Any, workdir: pathlib.Path) -> tuple[dict, list[str]]:
  """Trains the face and fingerprint verifiers on the unimodal data; evaluates them and fusion."""
  ucfg = _data_config(config, config.unimodal)
  data, _, records, pairs = prepare(ucfg)
  scores = {}
  for name, source in (("face", data.face_source()), ("fingerprint", data.fingerprint_source())):
    um, uv = train_unimodal(ucfg, source, records, pairs["val"], workdir / name)
    scores[name] = {k: _unimodal_scores(um, uv, source.images, pairs[k]) for k in ("val", "test")}
  out, sentences = evaluate_unimodal_and_fusion(ucfg, scores, pairs, _pair_subjects(data, pairs))
  if config.unimodal.baselines:
    out["baselines"], line = _baselines(ucfg, data, records, pairs)
    sentences.append(line)
  d = ucfg.data
  out["data"] = {
    "num_subjects": float(len(data.identity_names)),
    "num_records": float(len(data)),
    "face_difficulty": float(d.face_difficulty),
    "fingerprint_difficulty": float(d.fingerprint_difficulty),
  }
  return out, sentences


def _baselines(config: Any, data: PairedArrays, records, pairs) -> tuple[dict, str]:
  """Classical baselines of each modality on the verifiers' test pairs (`jaxsim.baselines`)."""
  out = {}
  for modality, images, names in (
    ("face", data.faces, baselines.FACE_BASELINES),
    ("fingerprint", data.fingerprints, baselines.FINGERPRINT_BASELINES),
  ):
    out[modality] = baselines.baseline_report(
      names,
      images,
      data.identities,
      records["train"],
      pairs["val"],
      pairs["test"],
      config.eval.bootstrap_resamples,
      config.seed,
    )
  parts = [
    f"{modality}: "
    + ", ".join(
      f"{n} {r['auc']:.3f} ({r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f})" for n, r in rows.items()
    )
    for modality, rows in out.items()
  ]
  return out, (
    "Classical baselines on the same test pairs (fitted on the training subjects, options "
    "chosen on validation; test AUC, 95% CI over test subjects): " + "; ".join(parts) + "."
  )


def correlation_sweep(config: Any, main, workdir: pathlib.Path) -> tuple[dict, list[str], dict]:
  """The positive control: the cross-modal recipe at each rho of `sweep.correlations`.

  Runs on the main run's data, nuisance and step count, so that what the control shows
  holds for the headline; the main model is reused at rho = data.correlation.
  """
  correlations, ev = tuple(config.sweep.correlations), config.eval
  rows, faces = [], main[2].faces
  for rho in correlations:
    if math.isclose(rho, config.data.correlation):
      model, variables, data, records, pairs = main
    else:
      data, _, records, pairs = prepare(config, correlation=rho, faces=faces)
      model, variables, _ = train_cross_modal(
        config, data, records, pairs, workdir / "sweep" / f"rho_{rho:.2f}"
      )
    d = _cross_modal_distances(model, variables, data, pairs["test"])
    row = clustered.subject_bootstrap(
      clustered.verification_statistic(-d, pairs["test"]["label"]),
      *_pair_subjects(data, pairs)["test"],
      num_resamples=ev.bootstrap_resamples,
      seed=config.seed,
    )
    full, ids, _ = _test_records_distances(model, variables, data, records["test"])
    perm = clustered.identity_permutation_test(
      -full.reshape(-1), np.repeat(ids, ids.size), np.tile(ids, ids.size), ev.permutations
    )
    rows.append({"correlation": float(rho), **row, "permutation_p_value": perm["p_value"]})
    logging.info("face_fp sweep: rho=%.2f test AUC %.3f", rho, row["auc"])
  lowest, highest = rows[0], rows[-1]
  by_ci = [r["correlation"] for r in rows if r["auc_ci_low"] > 0.5]
  by_test = [r["correlation"] for r in rows if r["permutation_p_value"] < 0.05]
  summary = {
    "smallest_detected_correlation": min(by_ci) if by_ci else math.nan,
    "smallest_correlation_permutation_p_below_0.05": min(by_test) if by_test else math.nan,
    "control_passed": float(
      highest["correlation"] > lowest["correlation"]
      and highest["auc_ci_low"] > lowest["auc_ci_high"]
    ),
  }
  out = {"rows": {f"rho_{r['correlation']:.2f}": r for r in rows}, **summary}
  return out, _sweep_sentences(config, rows, summary), _sweep_figure(rows, workdir)


def _sweep_sentences(config, rows, summary) -> list[str]:
  table = [
    "| rho | cross-modal test AUC | 95% CI (subjects) | permutation p |",
    "|---|---|---|---|",
  ]
  table += [
    f"| {r['correlation']:.2f} | {r['auc']:.3f} | {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f} "
    f"| {r['permutation_p_value']:.2g} |"
    for r in rows
  ]
  d = config.data
  smallest = summary["smallest_detected_correlation"]
  by_test = summary["smallest_correlation_permutation_p_below_0.05"]
  detect = (
    f"The smallest correlation whose subject interval lies above 0.5 is rho = {smallest:.2f}"
    if np.isfinite(smallest)
    else "No correlation in the sweep has a subject interval above 0.5"
  ) + (
    f" (the permutation test, over every test record pair, has p < 0.05 from rho = {by_test:.2f})"
    if np.isfinite(by_test)
    else ""
  )
  control = "passed" if summary["control_passed"] else "FAILED"
  return [
    f"Correlation sweep (positive control at the headline's setting: {config.train.steps} steps "
    f"per model, {d.num_subjects} subjects x {d.images_per_subject} images, nuisance difficulty "
    f"face {d.face_difficulty:g} / fingerprint {d.fingerprint_difficulty:g}). {detect}: a "
    f"smaller shared factor may go undetected by this design. Control {control}: the highest "
    "rho's interval lies above the lowest's.\n\n" + "\n".join(table)
  ]


def _sweep_figure(rows, workdir: pathlib.Path) -> dict:
  path = report.plot_metric_vs_parameter(
    [r["correlation"] for r in rows],
    [r["auc"] for r in rows],
    workdir / "sweep_auc.png",
    ci_low=[r["auc_ci_low"] for r in rows],
    ci_high=[r["auc_ci_high"] for r in rows],
    reference=0.5,
    xlabel="face-fingerprint latent correlation rho",
    ylabel="cross-modal ROC-AUC",
    title="Positive control: cross-modal AUC vs correlation",
    label="test AUC (95% CI, bootstrap over subjects)",
    ylim=(0.4, 1.0),
  )
  return {"Cross-modal test AUC against the face-fingerprint correlation": path}


def run(config: Any, workdir: pathlib.Path) -> dict:
  workdir = pathlib.Path(workdir)
  data, groups, records, pairs = prepare(config)
  logging.info("face_fp: %d records, %d subjects", len(data), len(data.identity_names))
  extra = {"source": config.data.source, "correlation": data_correlation(config)}
  report.write_manifest(
    splits.manifest(groups, identity_names=data.identity_names, records=records, extra=extra),
    workdir,
  )
  metrics: dict[str, Any] = {
    "data": {
      "num_subjects": float(len(data.identity_names)),
      "num_records": float(len(data)),
      "correlation": data_correlation(config),
      **{f"{k}_subjects": float(len(v)) for k, v in groups.items()},
    }
  }
  model, variables, info = train_cross_modal(config, data, records, pairs, workdir / "cross_modal")
  cm, sentences, figures = evaluate_cross_modal(
    config, model, variables, data, records, pairs, workdir
  )
  metrics["cross_modal"] = {"training": info, **cm}
  if config.unimodal.enabled:
    uni, uni_sentences = unimodal_and_fusion(config, workdir)
    metrics["unimodal"] = {k: uni[k] for k in ("face", "fingerprint", "data")}
    if "baselines" in uni:
      metrics["baselines"] = uni["baselines"]
    metrics["fusion"], metrics["fusion_best"] = uni["fusion"], uni["fusion_best"]
    sentences += uni_sentences
  if config.sweep.correlations and config.data.source != "builtin":
    logging.warning("face_fp: the correlation sweep needs data.source='builtin'; skipped")
  elif config.sweep.correlations:
    sweep, sweep_sentences, sweep_figures = correlation_sweep(
      config, (model, variables, data, records, pairs), workdir
    )
    metrics["sweep"] = sweep
    sentences += sweep_sentences
    figures.update(sweep_figures)
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(
    metrics,
    workdir,
    "Face <-> fingerprint: the semantic gap, fusion and a positive control",
    {k: v for k, v in figures.items() if v is not None},
    sentences,
  )
  return json.loads(json.dumps(metrics, default=float))
