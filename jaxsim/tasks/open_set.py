"""Open-set face identification: enrolled people, genuine outsiders, a reject threshold.

    python -m experiments.run --config=open_set            # built-in faces
    python -m experiments.run --config=open_set:seed       # seed project 5(b)'s recipe
    python -m experiments.run --config=open_set:runlocal   # < 2 min smoke run

The identities are split once, by seed, into four disjoint groups (manifest in
`split_manifest.json`): `train` (the encoder learns from them only), `enrolled`
(the company's staff: a gallery of `gallery_per_identity` images each, averaged into a
unit centroid template, and probe images split between validation and test),
`outsider_val` and `outsider_test` (people never enrolled and never trained on, whose
images are the non-mated probes of validation and of test). Scores are the cosine
similarity between a probe and each enrolled centroid.

Fitted on validation only: the reject threshold (the loosest one whose FPIR on the
validation outsiders is <= `eval.target_fpir`) and the Platt calibrator of
P(probe is this enrolled person | score) (fitted on every validation
probe-identity pair). Reported on test, with outsiders nobody fitted anything on:
FPIR, FNIR and DIR at that threshold (NIST FRVT definitions, rank 1), the FNIR-FPIR
curve, the closed-set CMC of the mated probes, the Top-k candidate list of every
probe with calibrated probabilities (`top5_test.json`), and a t-SNE figure.

Calibration is judged per probe, at the identification level: the probability of its
top-1 candidate against whether that candidate is right (a non-mated probe's never
is), by ECE, Brier score and log loss beside the base-rate predictor (the validation
top-1 correctness rate for every probe). Over all probe-identity pairs only about one
in I is a match, so there a constant base rate already scores an ECE near zero; that
figure is kept in metrics.json as secondary only. The 95% intervals come from a
bootstrap over test probe identities (enrolled people and outsiders, drawn within
each group), the independent units, with the validation threshold held fixed.

Seed project 5(b) computed these on the test scores, never used its trained
encoder, and showed an enrolled employee as its "unknown" example; here the
"unknown" examples are always test outsiders. Real faces by override, e.g. AT&T/ORL
(40 people x 10 images):

    python -m experiments.run --config=open_set --config.data.source=folders \
      --config.data.root=/path/to/orl_faces --config.data.channels=1 \
      --config.split.train=20 --config.split.enrolled=10 --config.split.outsider_val=5 \
      --config.split.outsider_test=5 --config.eval.target_fpir=0.02
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from jaxsim import inference, report, train
from jaxsim.data import loaders, pipeline, splits
from jaxsim.evaluate import calibration, clustered, openset


def enrolment_records(
  identities: np.ndarray, records: np.ndarray, gallery: int, val_probes: int, seed: int
) -> dict[str, np.ndarray]:
  """Splits each enrolled identity's records into gallery, validation and test probes.

  Every identity needs at least gallery + val_probes + 1 records, so that it has a
  test probe.
  """
  identities = np.asarray(identities)
  rng = np.random.default_rng([seed, 0xE4])
  out = {"gallery": [], "probe_val": [], "probe_test": []}
  for ident in np.unique(identities[records]):
    mine = rng.permutation(records[identities[records] == ident])
    if len(mine) < gallery + val_probes + 1:
      raise ValueError(
        f"enrolled identity {ident} has {len(mine)} images but split.gallery_per_identity="
        f"{gallery} + split.val_probes_per_identity={val_probes} + 1 test probe are needed"
      )
    out["gallery"].append(mine[:gallery])
    out["probe_val"].append(mine[gallery : gallery + val_probes])
    out["probe_test"].append(mine[gallery + val_probes :])
  out = {k: np.sort(np.concatenate(v)) for k, v in out.items()}
  splits.assert_disjoint(out)
  return out


def identification_calibration(
  val_scores, val_probe_ids, test_scores, test_probe_ids, identities, platt, num_bins
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
  val_top = openset.top_candidates(val_scores, identities, 1)["scores"][:, 0]
  val_correct = openset.top1_correct(val_scores, identities, val_probe_ids)
  test_top = openset.top_candidates(test_scores, identities, 1)["scores"][:, 0]
  correct = openset.top1_correct(test_scores, identities, test_probe_ids)
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


def _test_statistic(scores, identities, probe_ids, threshold, top1, num_bins):
  """Weighted open-set figures and top-1 calibration of the test probes, for the bootstrap."""
  decision = openset.open_set_statistic(scores, identities, probe_ids, threshold)

  def statistic(weights):
    out = decision(weights)
    for name, p in top1["probs"].items():
      m = calibration.calibration_metrics(p, top1["correct"], num_bins, weights)
      out.update({f"top1_{k}_{name}": v for k, v in m.items()})
    return out

  return statistic


def _name(names, ident: int, enrolled: set) -> str:
  return names[ident] if ident in enrolled else f"{names[ident]} (outsider)"


def run(config, workdir: pathlib.Path) -> dict:
  workdir = pathlib.Path(workdir)
  sp, ev = config.split, config.eval
  source, names, what = loaders.load_faces(config.data)
  ids = source.identities
  counts = {
    "train": sp.train,
    "enrolled": sp.enrolled,
    "outsider_val": sp.outsider_val,
    "outsider_test": sp.outsider_test,
  }
  groups = splits.split_identities(ids, counts=counts, seed=sp.seed)
  recs = splits.records_of(ids, groups)
  enrol = enrolment_records(
    ids, recs["enrolled"], sp.gallery_per_identity, sp.val_probes_per_identity, sp.seed
  )
  probes = {
    "val": np.r_[enrol["probe_val"], recs["outsider_val"]],
    "test": np.r_[enrol["probe_test"], recs["outsider_test"]],
  }
  splits.write_manifest(
    workdir / "split_manifest.json",
    groups,
    identity_names=names,
    records=recs,
    extra={
      "data": what,
      "split_seed": sp.seed,
      "enrolment_records": {k: [int(r) for r in v] for k, v in enrol.items()},
    },
  )

  def val_metrics(model, variables) -> dict[str, float]:
    # Model selection on validation: enrolled centroids, validation probes and outsiders.
    rows = np.r_[enrol["gallery"], probes["val"]]
    e = inference.embed(model, variables, source.images[rows], batch_size=ev.batch_size)
    g = len(enrol["gallery"])
    t, t_ids = openset.identity_templates(e[:g], ids[enrol["gallery"]], mode="centroid")
    s, c = openset.identity_scores(e[g:], t, t_ids, ev.score)
    pv = ids[probes["val"]]
    key = f"{ev.target_fpir:.0e}"
    out = openset.fnir_at_fpir(s, c, pv, fpirs=(ev.target_fpir,))
    return {
      "dir_at_target_fpir": out[f"dir_at_fpir_{key}"],
      "cmc_rank_1": openset.cmc_metrics(s, c, pv, ranks=(1,))["rank_1"],
    }

  it = pipeline.sampler_iterator(
    source,
    recs["train"],
    config.sampler,
    config.train.batch_size,
    config.train.seed,
    jax.process_index(),
    jax.process_count(),
  )
  model, variables, train_info = train.fit_model(
    "encoder",
    config.model,
    config.loss,
    config.train,
    it,
    train.SAMPLER_INPUTS[config.sampler.kind],
    workdir,
    eval_fn=val_metrics,
  )
  needed = np.unique(np.r_[enrol["gallery"], probes["val"], probes["test"]])
  emb_rows, images_per_s = inference.embed_timed(
    model, variables, source.images[needed], ev.batch_size
  )
  row = np.full(len(source), -1, np.int64)
  row[needed] = np.arange(len(needed))
  emb = lambda r: emb_rows[row[r]]  # noqa: E731

  templates, template_ids = openset.identity_templates(
    emb(enrol["gallery"]), ids[enrol["gallery"]], mode="centroid"
  )
  scores, cols = {}, None
  for split in ("val", "test"):
    scores[split], cols = openset.identity_scores(
      emb(probes[split]), templates, template_ids, ev.score
    )
  pid = {s: ids[probes[s]] for s in probes}

  # Fitted on validation, applied to test.
  decision = openset.open_set_report(
    scores["val"], cols, pid["val"], scores["test"], cols, pid["test"], ev.target_fpir
  )
  threshold = decision["threshold"]
  val_s, val_y = openset.probe_identity_pairs(scores["val"], cols, pid["val"])
  platt = calibration.platt_fit(val_s, val_y)
  test_s, test_y = openset.probe_identity_pairs(scores["test"], cols, pid["test"])
  p_test = calibration.platt_apply(platt, test_s)
  raw = np.clip((test_s + 1) / 2, 0, 1) if ev.score == "cosine" else None
  top = openset.top_candidates(
    scores["test"], cols, ev.top_k, lambda s: calibration.platt_apply(platt, s)
  )
  top1_correct = openset.top1_correct(scores["test"], cols, pid["test"])
  mated = np.isin(pid["test"], cols)
  top1 = identification_calibration(
    scores["val"], pid["val"], scores["test"], pid["test"], cols, platt, ev.num_bins
  )
  # Intervals: probe identities (enrolled people and outsiders) are the independent
  # units; drawn within each group, with the validation threshold and calibrators fixed.
  boot = clustered.subject_bootstrap(
    _test_statistic(scores["test"], cols, pid["test"], threshold, top1, ev.num_bins),
    pid["test"],
    strata=mated,
    num_resamples=ev.bootstrap_resamples,
    seed=config.seed,
  )

  metrics: dict = {
    "data": {
      **{f"num_identities_{k}": float(len(v)) for k, v in groups.items()},
      "num_gallery_images": float(len(enrol["gallery"])),
      "num_val_mated": float(len(enrol["probe_val"])),
      "num_val_nonmated": float(len(recs["outsider_val"])),
      "num_test_mated": float(len(enrol["probe_test"])),
      "num_test_nonmated": float(len(recs["outsider_test"])),
    },
    "test": {
      "at_val_threshold": decision,
      "fnir_at_fpir_on_test": openset.fnir_at_fpir(
        scores["test"], cols, pid["test"], fpirs=tuple(ev.fpirs)
      ),
      "cmc": openset.cmc_metrics(scores["test"], cols, pid["test"], ranks=(1, 5, 10)),
      # Per probe: P(top-1 candidate is right) against whether it is (outsiders never).
      "calibration_top1": top1["metrics"],
      # 95% intervals by a bootstrap over test probe identities (mated and non-mated).
      "intervals": boot,
      # Secondary: over every probe-identity pair, where 1 pair in I is a match, so a
      # constant base rate already scores a near-zero ECE (see calibration_top1).
      "secondary_calibration_all_pairs_platt": calibration.calibration_metrics(
        p_test, test_y, ev.num_bins
      ),
      "secondary_calibration_all_pairs_base_rate": calibration.base_rate_metrics(
        test_y, float(np.mean(val_y)), ev.num_bins
      ),
    },
    "val": {
      "cmc": openset.cmc_metrics(scores["val"], cols, pid["val"], ranks=(1, 5, 10)),
      "platt": platt,
      "platt_top1": top1["platt_top1"],
      "top1_correct_rate": top1["val_rate"],
    },
    "inference": {"images_per_second": images_per_s, "num_images": float(len(needed))},
    "train": train_info,
  }
  if raw is not None:
    metrics["test"]["secondary_calibration_all_pairs_raw_cosine"] = calibration.calibration_metrics(
      raw, test_y, ev.num_bins
    )

  # Top-k lists of every test probe.
  enrolled = set(int(i) for i in cols)
  rows = []
  for n, r in enumerate(probes["test"]):
    accepted = bool(top["scores"][n, 0] >= threshold)
    rows.append(
      {
        "probe_record": int(r),
        "true_identity": _name(names, int(ids[r]), enrolled),
        "mated": bool(mated[n]),
        "decision": names[int(top["identities"][n, 0])] if accepted else "unknown",
        "correct": bool(accepted == mated[n] and (not accepted or top1_correct[n])),
        "top": [
          {
            "identity": names[int(i)],
            "score": float(s),
            "probability": float(p),
          }
          for i, s, p in zip(
            top["identities"][n], top["scores"][n], top["probabilities"][n], strict=True
          )
        ],
      }
    )
  if jax.process_index() == 0:
    (workdir / "top5_test.json").write_text(
      json.dumps({"threshold": threshold, "probes": rows}, indent=2)
    )

  # Figures.
  fpir, fnir, _ = openset.open_set_curve(scores["test"], cols, pid["test"])
  diagrams = {
    {"platt_all_pairs": "Platt, all val pairs", "platt_top1": "Platt, val top-1"}[k]: (
      calibration.reliability_diagram(p, top1["correct"], ev.num_bins)
    )
    for k, p in top1["probs"].items()
    if k != "base_rate"
  }
  test_gallery = enrol["gallery"]
  tsne_records = np.r_[test_gallery, probes["test"]]
  tsne_labels = np.where(np.isin(ids[tsne_records], cols), ids[tsne_records], -1)
  # Examples: the first mated and the first non-mated (outsider) probes in a seeded order.
  rng = np.random.default_rng([config.seed, 0xE8])
  order = rng.permutation(len(probes["test"]))
  picks = [i for i in order if mated[i]][: ev.num_examples]
  picks += [i for i in order if not mated[i]][: ev.num_examples]
  first_gallery = {int(ids[r]): r for r in enrol["gallery"][::-1]}
  neighbours = np.stack(
    [[source.images[first_gallery[int(i)]] for i in top["identities"][p]] for p in picks]
  )
  figures = {
    "Open-set DET on test (FNIR vs FPIR, rank 1)": report.plot_det(
      {"test": (fpir, fnir)}, workdir / "openset_det.png", "FPIR", "FNIR"
    ),
    "CMC of mated test probes": report.plot_cmc(
      {"test": openset.cmc_curve(scores["test"], cols, pid["test"], min(ev.max_rank, len(cols)))},
      workdir / "cmc.png",
    ),
    "Reliability of P(top-1 candidate is right) on test probes": report.plot_reliability(
      diagrams, workdir / "reliability.png"
    ),
    "t-SNE of test gallery and probes (outsiders share one colour)": report.plot_tsne(
      emb(tsne_records),
      tsne_labels,
      workdir / "tsne.png",
      seed=config.seed,
      max_points=ev.tsne_max_points,
    ),
    "Top-5 examples (rows: mated probes, then outsider probes; green = true identity)": (
      report.plot_retrieval_grid(
        source.images[probes["test"][picks]],
        neighbours,
        top["identities"][picks] == pid["test"][picks][:, None],
        workdir / "top5_examples.png",
      )
    ),
  }

  d, t, b, c1 = decision, metrics["test"], boot, top1["metrics"]

  def ci(k):
    return f"{b[k]:.4f} [{b[k + '_ci_low']:.4f}, {b[k + '_ci_high']:.4f}]"

  def cal(name):
    return " / ".join(
      f"{b[f'top1_{m}_{name}']:.4f} [{b[f'top1_{m}_{name}_ci_low']:.4f}, "
      f"{b[f'top1_{m}_{name}_ci_high']:.4f}]"
      for m in ("ece", "brier", "log_loss")
    )

  sentences = [
    f"Data: {what}. Disjoint identities: {len(groups['train'])} train, "
    f"{len(groups['enrolled'])} enrolled ({sp.gallery_per_identity} gallery images each), "
    f"{len(groups['outsider_val'])} validation outsiders, {len(groups['outsider_test'])} test "
    f"outsiders; test has {int(d['num_mated'])} mated and {int(d['num_nonmated'])} non-mated "
    "probes.",
    f"Reject threshold {threshold:.4f} set on validation for FPIR <= {ev.target_fpir:g} "
    f"(validation FPIR {d['val_fpir']:.4f}). On test: FPIR {ci('fpir')}, DIR {ci('dir')} "
    f"(FNIR {d['fnir']:.4f}, rank 1); closed-set CMC rank 1 {ci('cmc_rank_1')}, rank 5 "
    f"{t['cmc']['rank_5']:.4f}. 95% CI over {int(b['num_subjects'])} test probe identities "
    f"({len(groups['enrolled'])} enrolled, {len(groups['outsider_test'])} outsiders; a "
    f"bootstrap over identities, {int(b['num_resamples'])} resamples, threshold fixed).",
    f"Identification-level calibration, one outcome per test probe (is its top-1 candidate "
    f"right? {c1['correct_rate']:.4f} of {int(c1['num_probes'])} test probes are, "
    f"{top1['val_rate']:.4f} on validation; outsiders never): ECE / Brier / log loss "
    f"{cal('platt_all_pairs')} with the Top-5 lists' Platt probabilities (fitted on "
    "validation probe-identity pairs)"
    + (
      f", {cal('platt_top1')} with Platt refitted on validation top-1 outcomes"
      if "platt_top1" in c1
      else ""
    )
    + f", against {cal('base_rate')} for the base-rate predictor (the validation rate "
    "for every probe).",
  ]
  for i in picks:
    r = rows[i]
    c = r["top"][0]
    sentences.append(
      f"Example ({'enrolled' if r['mated'] else 'outsider, never enrolled or trained on'}): "
      f"probe of {r['true_identity']} -> top candidate {c['identity']} (score {c['score']:.3f}, "
      f"P = {c['probability']:.3f}); decision: {r['decision']} "
      f"({'correct' if r['correct'] else 'wrong'})."
    )
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(metrics, workdir, "Open-set face identification", figures, sentences)
  for s in sentences[:3]:
    print(s, flush=True)
  return metrics
