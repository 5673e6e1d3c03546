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

Fitted on validation only: the reject threshold at `eval.target_fpir` and the Platt
calibrator (`openset.identification_report` documents the protocol). Reported on test,
with outsiders nobody fitted anything on: FPIR, FNIR and DIR at that threshold (NIST
FRVT, rank 1), the CMC, calibration of P(top-1 candidate is right) per probe against
the base rate, every probe's Top-k list (`top5_test.json`), with 95% intervals over
test probe identities.

Seed project 5(b) computed these on the test scores, never used its trained
encoder, and showed an enrolled employee as its "unknown" example; here the
"unknown" examples are always test outsiders; classical baselines identify the same
probes against the same gallery (`eval.baselines`). Real faces (ORL): see README.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np

from jaxsim import baselines, inference, report, train
from jaxsim.data import loaders, splits
from jaxsim.evaluate import calibration, openset

# The run's summary table (`report.summary_table`): label -> path in the metrics.
HEADLINE = {
  "test FPIR at the validation threshold": "test.intervals.fpir",
  "test DIR (rank 1)": "test.intervals.dir",
  "closed-set CMC rank 1": "test.intervals.cmc_rank_1",
  "top-1 ECE, Platt (all val pairs)": "test.intervals.top1_ece_platt_all_pairs",
  "top-1 ECE, base rate": "test.intervals.top1_ece_base_rate",
}


def prepare(config, workdir: pathlib.Path) -> dict:
  """Faces, the four identity groups, enrolment records and probes; writes the manifest."""
  sp = config.split
  source, names, what = loaders.load_faces(config.data)
  ids = source.identities
  counts = {k: sp[k] for k in ("train", "enrolled", "outsider_val", "outsider_test")}
  groups = splits.split_identities(ids, counts=counts, seed=sp.seed)
  recs = splits.records_of(ids, groups)
  enrol = splits.enrolment_split(
    ids, recs["enrolled"], sp.gallery_per_identity, sp.val_probes_per_identity, seed=sp.seed
  )
  probes = {
    "val": np.r_[enrol["probe_val"], recs["outsider_val"]],
    "test": np.r_[enrol["probe_test"], recs["outsider_test"]],
  }
  extra = {
    "data": what,
    "split_seed": sp.seed,
    "enrolment_records": {k: [int(r) for r in v] for k, v in enrol.items()},
  }
  report.write_manifest(
    splits.manifest(groups, identity_names=names, records=recs, extra=extra), workdir
  )
  return {
    "source": source,
    "names": names,
    "what": what,
    "ids": ids,
    "groups": groups,
    "records": recs,
    "enrol": enrol,
    "probes": probes,
  }


def _selection_metrics(data, ev):
  """Model selection on validation: enrolled centroids, validation probes and outsiders."""
  gallery, probes, ids = data["enrol"]["gallery"], data["probes"]["val"], data["ids"]
  images = data["source"].images[np.r_[gallery, probes]]

  def val_metrics(model, variables) -> dict[str, float]:
    e = inference.embed(model, variables, images, batch_size=ev.batch_size)
    g = len(gallery)
    return openset.centroid_metrics(
      e[:g], ids[gallery], e[g:], ids[probes], ev.target_fpir, ev.score
    )

  return val_metrics


def train_encoder(config, data, workdir: pathlib.Path):
  """Trains the encoder on the train identities, selected by validation DIR at the target FPIR."""
  return train.fit_on_records(
    "encoder",
    config.model,
    config.loss,
    config.train,
    data["source"],
    data["records"]["train"],
    workdir,
    eval_fn=_selection_metrics(data, config.eval),
  )


def score_probes(config, data, model, variables) -> dict:
  """Embeds gallery and probes; scores of validation and test probes to the centroids."""
  ev, ids, gallery, probes = config.eval, data["ids"], data["enrol"]["gallery"], data["probes"]
  emb, timing = inference.embed_records(
    model, variables, data["source"].images, np.r_[gallery, *probes.values()], ev.batch_size
  )
  templates, cols = openset.identity_templates(emb(gallery), ids[gallery], mode="centroid")
  scores = {
    s: openset.identity_scores(
      emb(probes[s]), templates, cols, ev.score, ev.search_backend, ev.search_params, ev.search_k
    )[0]
    for s in probes
  }
  pid = {s: ids[probes[s]] for s in probes}
  return {"scores": scores, "cols": cols, "pid": pid, "emb": emb, "inference": timing}


def evaluate(config, scored: dict) -> dict:
  """Threshold and calibrators fitted on validation; test figures with identity intervals."""
  ev, s, pid = config.eval, scored["scores"], scored["pid"]
  return openset.identification_report(
    s["val"],
    pid["val"],
    s["test"],
    pid["test"],
    scored["cols"],
    target_fpir=ev.target_fpir,
    fpirs=tuple(ev.fpirs),
    top_k=ev.top_k,
    num_bins=ev.num_bins,
    num_resamples=ev.bootstrap_resamples,
    seed=config.seed,
    cosine=ev.score == "cosine",
  )


def _data_metrics(data) -> dict[str, float]:
  e, r = data["enrol"], data["records"]
  counts = {"gallery_images": e["gallery"], "val_mated": e["probe_val"]}
  counts.update(val_nonmated=r["outsider_val"], test_mated=e["probe_test"])
  counts["test_nonmated"] = r["outsider_test"]
  out = {f"num_identities_{k}": float(len(v)) for k, v in data["groups"].items()}
  return {**out, **{f"num_{k}": float(len(v)) for k, v in counts.items()}}


def classical_baselines(config, data) -> dict:
  """The classical face baselines as identifiers on the same gallery and probes."""
  ev, images, ids = config.eval, data["source"].images, data["ids"]
  return baselines.identification_report(
    baselines.FACE_BASELINES,
    images,
    ids,
    data["records"]["train"],
    data["enrol"]["gallery"],
    data["probes"],
    ev.target_fpir,
    ev.bootstrap_resamples,
    config.seed,
  )


def figures(config, data, scored, results, picks, workdir: pathlib.Path) -> dict:
  """The DET, CMC, reliability, t-SNE and Top-5 example figures: {caption: path}."""
  ev, s, cols, pid = config.eval, scored["scores"]["test"], scored["cols"], scored["pid"]["test"]
  ids, images, top, top1 = data["ids"], data["source"].images, results["top"], results["top1"]
  fpir, fnir, _ = openset.open_set_curve(s, cols, pid)
  labels = {"platt_all_pairs": "Platt, all val pairs", "platt_top1": "Platt, val top-1"}
  diagrams = {
    labels[k]: calibration.reliability_diagram(p, top1["correct"], ev.num_bins)
    for k, p in top1["probs"].items()
    if k != "base_rate"
  }
  gallery, probes = data["enrol"]["gallery"], data["probes"]["test"]
  tsne_records = np.r_[gallery, probes]
  tsne_labels = np.where(np.isin(ids[tsne_records], cols), ids[tsne_records], -1)
  first_gallery = {int(ids[r]): r for r in gallery[::-1]}
  neighbours = np.stack(
    [[images[first_gallery[int(i)]] for i in top["identities"][p]] for p in picks]
  )
  return {
    "Open-set DET on test (FNIR vs FPIR, rank 1)": report.plot_det(
      {"test": (fpir, fnir)}, workdir / "openset_det.png", "FPIR", "FNIR"
    ),
    "CMC of mated test probes": report.plot_cmc(
      {"test": openset.cmc_curve(s, cols, pid, min(ev.max_rank, len(cols)))}, workdir / "cmc.png"
    ),
    "Reliability of P(top-1 candidate is right) on test probes": report.plot_reliability(
      diagrams, workdir / "reliability.png"
    ),
    "t-SNE of test gallery and probes (outsiders share one colour)": report.plot_tsne(
      scored["emb"](tsne_records),
      tsne_labels,
      workdir / "tsne.png",
      seed=config.seed,
      max_points=ev.tsne_max_points,
    ),
    "Top-5 examples (rows: mated probes, then outsider probes; green = true identity)": (
      report.plot_retrieval_grid(
        images[probes[picks]],
        neighbours,
        top["identities"][picks] == pid[picks][:, None],
        workdir / "top5_examples.png",
      )
    ),
  }


def sentences(config, data, results, rows, picks) -> list[str]:
  """The report's findings in words: split, threshold and rates, calibration, examples."""
  sp, groups, b = config.split, data["groups"], results["test"]["intervals"]
  test, top1 = results["test"], results["top1"]
  d, c1 = test["at_val_threshold"], test["calibration_top1"]
  ci = functools.partial(report.with_ci, b)

  def cal(name):
    return " / ".join(ci(f"top1_{m}_{name}") for m in ("ece", "brier", "log_loss"))

  refit = ""
  if "platt_top1" in c1:
    refit = f", {cal('platt_top1')} with Platt refitted on validation top-1 outcomes"
  out = [
    f"Data: {data['what']}. Disjoint identities: {len(groups['train'])} train, "
    f"{len(groups['enrolled'])} enrolled ({sp.gallery_per_identity} gallery images each), "
    f"{len(groups['outsider_val'])} validation outsiders, {len(groups['outsider_test'])} test "
    f"outsiders; test has {int(d['num_mated'])} mated and {int(d['num_nonmated'])} non-mated "
    "probes.",
    f"Reject threshold {d['threshold']:.4f} set on validation for FPIR <= "
    f"{config.eval.target_fpir:g} "
    f"(validation FPIR {d['val_fpir']:.4f}). On test: FPIR {ci('fpir')}, DIR {ci('dir')} "
    f"(FNIR {d['fnir']:.4f}, rank 1); closed-set CMC rank 1 {ci('cmc_rank_1')}, rank 5 "
    f"{test['cmc']['rank_5']:.4f}. 95% CI over {int(b['num_subjects'])} test "
    "probe identities "
    f"({len(groups['enrolled'])} enrolled, {len(groups['outsider_test'])} outsiders; a "
    f"bootstrap over identities, {int(b['num_resamples'])} resamples, threshold fixed).",
    f"Identification-level calibration, one outcome per test probe (is its top-1 candidate "
    f"right? {c1['correct_rate']:.4f} of {int(c1['num_probes'])} test probes are, "
    f"{top1['val_rate']:.4f} on validation; outsiders never): ECE / Brier / log loss "
    f"{cal('platt_all_pairs')} with the Top-5 lists' Platt probabilities (fitted on "
    f"validation probe-identity pairs){refit}, against {cal('base_rate')} for the base-rate "
    "predictor (the validation rate for every probe).",
  ]
  for i in picks:
    r, c = rows[i], rows[i]["top"][0]
    who = "enrolled" if r["mated"] else "outsider, never enrolled or trained on"
    out.append(
      f"Example ({who}): probe of {r['true_identity']} -> top candidate {c['identity']} "
      f"(score {c['score']:.3f}, P = {c['probability']:.3f}); decision: {r['decision']} "
      f"({'correct' if r['correct'] else 'wrong'})."
    )
  return out


def run(config, workdir: pathlib.Path) -> dict:
  """Prepare -> train -> evaluate -> describe (see the module docstring)."""
  workdir = pathlib.Path(workdir)
  data = prepare(config, workdir)
  model, variables, train_info = train_encoder(config, data, workdir)
  scored = score_probes(config, data, model, variables)
  results = evaluate(config, scored)
  metrics = {"data": _data_metrics(data), "test": results["test"], "val": results["val"]}
  metrics.update(inference=scored["inference"], train=train_info)
  threshold = results["test"]["at_val_threshold"]["threshold"]
  pid, cols, probes = scored["pid"]["test"], scored["cols"], data["probes"]["test"]
  rows = openset.candidate_lists(results["top"], pid, data["names"], cols, threshold, probes)
  report.write_json({"threshold": threshold, "probes": rows}, workdir / "top5_test.json")
  picks = openset.example_probes(pid, cols, config.eval.num_examples, seed=config.seed)
  text = sentences(config, data, results, rows, picks)
  if config.eval.baselines:
    metrics["baselines"] = classical_baselines(config, data)
    text.append(baselines.identification_sentence(metrics["baselines"], config.eval.target_fpir))
  report.write_metrics_json(metrics, workdir)
  figs = figures(config, data, scored, results, picks, workdir)
  report.write_report_md(metrics, workdir, "Open-set face identification", figs, text)
  return metrics
