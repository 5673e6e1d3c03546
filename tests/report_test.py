"""Figures and report files are written headless, by process 0 only, as strict JSON."""

import json

import numpy as np
import pytest

from jaxsim import report
from jaxsim.evaluate import calibration, overlap, verification


def _png_ok(path):
  return path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_all_figures(tmp_path):
  rng = np.random.default_rng(0)
  g, i = rng.normal(1.2, 0.1, 200), rng.normal(1.414, 0.05, 300)
  assert _png_ok(report.plot_distance_histograms(g, i, 256, tmp_path / "hist.png"))
  s = np.r_[-g, -i]
  y = np.r_[np.ones(200, int), np.zeros(300, int)]
  fpr, tpr, _ = verification.roc_curve(s, y)
  assert _png_ok(report.plot_roc({"model": (fpr, tpr)}, tmp_path / "roc.png"))
  assert _png_ok(report.plot_det({"model": (fpr, 1 - tpr)}, tmp_path / "det.png"))
  assert _png_ok(report.plot_cmc({"model": np.linspace(0.5, 1, 10)}, tmp_path / "cmc.png"))
  probs = calibration.platt_apply(calibration.platt_fit(s, y), s)
  diagram = calibration.reliability_diagram(probs, y, 10)
  assert _png_ok(report.plot_reliability({"platt": diagram}, tmp_path / "rel.png"))
  emb = np.r_[rng.normal(0, 1, (30, 8)), rng.normal(4, 1, (30, 8))]
  assert _png_ok(report.plot_tsne(emb, np.r_[np.zeros(30), np.ones(30)], tmp_path / "tsne.png"))
  imgs = rng.random((2, 6, 8, 8, 1)).astype(np.float32)
  correct = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], bool)
  assert _png_ok(
    report.plot_retrieval_grid(imgs[:, 0], imgs[:, 1:], correct, tmp_path / "grid.png")
  )


def test_only_process_zero_writes(tmp_path):
  assert report.plot_cmc({"m": [1.0]}, tmp_path / "cmc.png", process_index=1) is None
  assert report.write_metrics_json({"a": {"x": 1.0}}, tmp_path, process_index=3) is None
  assert report.write_report_md({"a": {"x": 1.0}}, tmp_path, "t", process_index=1) is None
  assert not any(tmp_path.iterdir())
  assert report.is_writer()  # single process: jax.process_index() == 0


def test_metrics_json_and_report_md(tmp_path):
  metrics = {
    "test": {
      "verification": {"auc": np.float32(0.75), "tar_at_far_1e-04": float("nan"), "n": 10.0},
      "retrieval": {"precision_at_1": 0.5},
    },
    "config_seed": 3,
  }
  path = report.write_metrics_json(metrics, tmp_path)
  loaded = json.loads(path.read_text())
  assert loaded["test"]["verification"]["tar_at_far_1e-04"] is None
  assert loaded["test"]["verification"]["auc"] == pytest.approx(0.75)
  fig = report.plot_cmc({"m": [0.2, 0.4]}, tmp_path / "figures" / "cmc.png")
  null = overlap.null_distance_test(
    np.clip(np.random.default_rng(0).normal(1.41, 0.3, 500), 0, 2), 256
  )
  sentence = report.null_test_sentence(null, "impostor distances")
  assert "not isotropic" in sentence and "sqrt(2)" in sentence
  assert "not evidence that the two sides share information" in sentence
  md = report.write_report_md(metrics, tmp_path, "Run", {"CMC": fig}, [sentence]).read_text()
  assert (
    "## test/verification" in md and "| auc | 0.75 |" in md and "| tar_at_far_1e-04 | n/a |" in md
  )
  assert "![CMC](figures/cmc.png)" in md and sentence in md


def test_null_sentence_for_random_vectors():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 3000, 32))
  x /= np.linalg.norm(x, axis=-1, keepdims=True)
  r = overlap.null_distance_test(np.linalg.norm(x[0] - x[1], axis=-1), 32)
  sentence = report.null_test_sentence(r)
  assert "consistent with isotropic random vectors" in sentence
  assert "does not show the embeddings carry no structure" in sentence


def test_metric_vs_parameter_plot(tmp_path):
  path = report.plot_metric_vs_parameter(
    [0, 0.5, 1],
    [0.5, 0.6, 0.8],
    tmp_path / "sweep.png",
    ci_low=[0.45, 0.55, 0.75],
    ci_high=[0.55, 0.65, 0.85],
    reference=0.5,
    process_index=0,
  )
  assert path.is_file() and path.stat().st_size > 1000
  assert report.plot_metric_vs_parameter([0], [1], tmp_path / "x.png", process_index=1) is None
  assert not (tmp_path / "x.png").exists()


def test_report_links_resolve_from_report_under_a_relative_workdir(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  workdir = "runs/face_fp"  # the default: relative to where the run started
  rel_fig = report.plot_cmc({"m": [0.2, 0.4]}, f"{workdir}/distances_test.png")
  abs_fig = report.plot_cmc({"m": [0.3]}, tmp_path / workdir / "figures" / "cmc.png")
  outside = report.plot_cmc({"m": [0.3]}, tmp_path / "elsewhere" / "roc.png")
  md_path = report.write_report_md(
    {"a": {"x": 1.0}}, workdir, "Run", {"hist": rel_fig, "cmc": abs_fig, "roc": outside}
  )
  md = md_path.read_text()
  links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
  assert len(links) == 3 and "distances_test.png" in links
  for link in links:
    assert (tmp_path / md_path.parent / link).is_file(), link


def test_environment_names_versions_and_cpu(tmp_path):
  report.add_to_report(tmp_path, {"environment": report.environment()})
  env = json.loads((tmp_path / "metrics.json").read_text())["environment"]
  assert {"jax", "jaxlib", "python", "platform", "cpu"} <= set(env)
  assert all(env[k] for k in ("jax", "jaxlib", "python", "cpu"))


def test_cpu_isa_reads_the_flags_line_and_keeps_the_listed_order():
  cpuinfo = "processor\t: 0\nflags\t\t: fpu sse avx512f fma avx2 amx_tile\nflags : avx512_fp16\n"
  assert report.cpu_isa(cpuinfo) == ["avx2", "fma", "avx512f", "amx_tile"]
  assert report.cpu_isa("processor : 0\n") == []


def test_isa_caps_names_each_cap_in_force():
  env = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false --xla_cpu_max_isa=AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "FAISS_SIMD_LEVEL": "",
    "HOME": "/root",
  }
  assert report.isa_caps(env) == {"xla": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
  assert report.isa_caps({"XLA_FLAGS": "--xla_cpu_max_isa_x=1"}) == {}


def test_jsonable_output_is_strict_json():
  text = json.dumps(report.jsonable({"a": float("nan"), "b": [np.float32("inf"), 1.0]}))
  assert json.loads(text) == {"a": None, "b": [None, 1.0]}


def test_add_to_report(tmp_path):
  report.write_metrics_json({"a": {"x": 1.0}}, tmp_path)
  report.write_report_md({"a": {"x": 1.0}}, tmp_path, "Run")
  report.add_to_report(tmp_path, {"data_files": {"num_non_image": 1}}, "Left out: 1 file.")
  loaded = json.loads((tmp_path / "metrics.json").read_text())
  assert loaded["a"] == {"x": 1.0} and loaded["data_files"] == {"num_non_image": 1}
  assert "Left out: 1 file." in (tmp_path / "report.md").read_text()
