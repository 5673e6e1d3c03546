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

Modules: `cross_modal` (data, pair lists, the two-tower model and its statistics),
`unimodal` (the verifiers, their classical baselines and fusion), `sweep` (the positive
control); this module composes them.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from absl import logging

from jaxsim import report
from jaxsim.data import splits
from jaxsim.tasks.face_fp.cross_modal import (
  data_correlation,
  evaluate_cross_modal,
  prepare,
  train_cross_modal,
)
from jaxsim.tasks.face_fp.sweep import correlation_sweep
from jaxsim.tasks.face_fp.unimodal import unimodal_and_fusion

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


def run(config: Any, workdir: pathlib.Path) -> dict:
  """Prepare -> cross-modal model -> unimodal verifiers and fusion -> sweep -> describe."""
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
  if config.eval.unimodal:
    uni, uni_sentences = unimodal_and_fusion(config, workdir)
    metrics["unimodal"] = {k: uni[k] for k in ("face", "fingerprint", "data")}
    for key in ("baselines", "learned_plus_baseline"):
      if key in uni:
        metrics[key] = uni[key]
    metrics["fusion"], metrics["fusion_best"] = uni["fusion"], uni["fusion_best"]
    sentences += uni_sentences
  if config.eval.sweep_correlations and config.data.source != "builtin":
    logging.warning("face_fp: the correlation sweep needs data.source='builtin'; skipped")
  elif config.eval.sweep_correlations:
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
