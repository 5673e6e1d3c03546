"""Figures and reports: the only module in jaxsim that writes them.

Figures use matplotlib's object-oriented API (``matplotlib.figure.Figure`` renders with
the Agg canvas), so nothing needs a display and no global pyplot state is touched.

Multi-host runs: only process 0 writes. Every writer takes ``process_index`` (default:
``jax.process_index()``) and returns None without writing on any other process.

``metrics.json`` is a nesting of the flat metric dicts of `jaxsim.evaluate`, for example
``{"test": {"verification": {"auc": ...}, "retrieval": {...}}}``. NaN and infinities
(unsupported operating points) are written as ``null`` so the file is strict JSON, and
``environment`` records what the numbers were computed with (JAX, jaxlib, Python,
platform, CPU model; `experiments.run` adds it after the task): floating-point
trajectories differ between CPUs.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import platform
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from matplotlib.figure import Figure
from scipy import stats

from jaxsim.evaluate import overlap


def is_writer(process_index: int | None = None) -> bool:
  """True on the process that writes files (process 0)."""
  return (jax.process_index() if process_index is None else process_index) == 0


def _save(fig: Figure, path: str | pathlib.Path) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  return path


def plot_distance_histograms(
  genuine_distances: np.typing.ArrayLike,
  impostor_distances: np.typing.ArrayLike,
  dim: int | None,
  path: str | pathlib.Path,
  title: str = "Pair distances",
  process_index: int | None = None,
) -> pathlib.Path | None:
  """Density histograms of genuine and impostor distances, the exact null density for
  independent uniform unit vectors in R^dim overlaid (when ``dim`` is given) and sqrt(2) marked.
  """
  if not is_writer(process_index):
    return None
  g = np.asarray(genuine_distances, np.float64).reshape(-1)
  i = np.asarray(impostor_distances, np.float64).reshape(-1)
  fig = Figure(figsize=(6, 4))
  ax = fig.add_subplot()
  lo, hi = min(g.min(), i.min()), max(g.max(), i.max())
  bins = np.linspace(lo, hi, 60)
  ax.hist(g, bins, density=True, alpha=0.5, label=f"genuine (n={g.size})")
  ax.hist(i, bins, density=True, alpha=0.5, label=f"impostor (n={i.size})")
  if dim is not None:
    mean, std = overlap.null_distance_moments(dim)
    x = np.linspace(max(0.0, min(lo, mean - 5 * std)), min(2.0, max(hi, mean + 5 * std)), 400)
    ax.plot(x, overlap.null_distance_pdf(x, dim), "k-", lw=1.5, label=f"null, d={dim}")
  ax.axvline(math.sqrt(2), color="k", ls="--", lw=1, label="sqrt(2)")
  ax.set_xlabel("Euclidean distance")
  ax.set_ylabel("density")
  ax.set_title(title)
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_roc(
  curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
  path: str | pathlib.Path,
  log_far: bool = True,
  process_index: int | None = None,
) -> pathlib.Path | None:
  """ROC curves, ``{name: (fpr, tpr)}``; FAR on a log axis by default."""
  if not is_writer(process_index):
    return None
  fig = Figure(figsize=(5, 4))
  ax = fig.add_subplot()
  for name, (fpr, tpr) in curves.items():
    fpr = np.asarray(fpr)
    keep = fpr > 0 if log_far else slice(None)
    ax.plot(fpr[keep], np.asarray(tpr)[keep], label=name)
  if log_far:
    ax.set_xscale("log")
  else:
    ax.plot([0, 1], [0, 1], "k:", lw=1)
  ax.set_xlabel("false accept rate")
  ax.set_ylabel("true accept rate")
  ax.set_title("ROC")
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_det(
  curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
  path: str | pathlib.Path,
  xlabel: str = "false accept rate",
  ylabel: str = "false reject rate",
  process_index: int | None = None,
) -> pathlib.Path | None:
  """DET curves, ``{name: (fpr, fnr)}`` on normal-deviate axes (also fits FPIR/FNIR curves)."""
  if not is_writer(process_index):
    return None
  fig = Figure(figsize=(5, 4))
  ax = fig.add_subplot()
  ticks = np.array([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5, 0.8, 0.95])
  eps = 1e-5
  for name, (fpr, fnr) in curves.items():
    x = stats.norm.ppf(np.clip(np.asarray(fpr, np.float64), eps, 1 - eps))
    y = stats.norm.ppf(np.clip(np.asarray(fnr, np.float64), eps, 1 - eps))
    ax.plot(x, y, label=name)
  ax.set_xticks(stats.norm.ppf(ticks), [f"{t:g}" for t in ticks], fontsize=7)
  ax.set_yticks(stats.norm.ppf(ticks), [f"{t:g}" for t in ticks], fontsize=7)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title("DET")
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_cmc(
  curves: Mapping[str, np.ndarray], path: str | pathlib.Path, process_index: int | None = None
) -> pathlib.Path | None:
  """CMC curves, ``{name: rates at ranks 1..k}``."""
  if not is_writer(process_index):
    return None
  fig = Figure(figsize=(5, 4))
  ax = fig.add_subplot()
  for name, cmc in curves.items():
    cmc = np.asarray(cmc)
    ax.plot(np.arange(1, cmc.size + 1), cmc, marker="o", ms=3, label=name)
  ax.set_xlabel("rank")
  ax.set_ylabel("identification rate")
  ax.set_ylim(0, 1.02)
  ax.set_title("CMC (closed set)")
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_metric_vs_parameter(
  x: np.typing.ArrayLike,
  y: np.typing.ArrayLike,
  path: str | pathlib.Path,
  *,
  ci_low: np.typing.ArrayLike | None = None,
  ci_high: np.typing.ArrayLike | None = None,
  reference: float | None = None,
  xlabel: str = "",
  ylabel: str = "",
  title: str = "",
  label: str = "",
  ylim: tuple[float, float] | None = None,
  process_index: int | None = None,
) -> pathlib.Path | None:
  """A metric against a swept parameter, with optional interval bars and a reference line."""
  if not is_writer(process_index):
    return None
  x, y = np.asarray(x, float), np.asarray(y, float)
  yerr = None
  if ci_low is not None and ci_high is not None:
    yerr = np.stack([y - np.asarray(ci_low, float), np.asarray(ci_high, float) - y])
  fig = Figure(figsize=(5, 3.5))
  ax = fig.add_subplot()
  ax.errorbar(x, y, yerr=yerr, marker="o", capsize=3, label=label or None)
  if reference is not None:
    ax.axhline(reference, color="k", ls=":", lw=1, label="chance")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if ylim is not None:
    ax.set_ylim(*ylim)
  ax.set_title(title)
  if label or reference is not None:
    ax.legend(fontsize=8)
  return _save(fig, path)


def plot_reliability(
  diagrams: Mapping[str, Mapping[str, np.ndarray]],
  path: str | pathlib.Path,
  process_index: int | None = None,
) -> pathlib.Path | None:
  """Reliability diagrams, ``{name: calibration.reliability_diagram(...)}``."""
  if not is_writer(process_index):
    return None
  fig = Figure(figsize=(5, 4))
  ax = fig.add_subplot()
  ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
  for name, d in diagrams.items():
    nz = np.asarray(d["count"]) > 0
    ax.plot(
      np.asarray(d["mean_predicted"])[nz],
      np.asarray(d["fraction_positive"])[nz],
      marker="o",
      ms=3,
      label=name,
    )
  ax.set_xlabel("predicted P(same)")
  ax.set_ylabel("observed fraction same")
  ax.set_title("Reliability")
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_tsne(
  embeddings: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  path: str | pathlib.Path,
  seed: int = 0,
  max_points: int = 2000,
  perplexity: float = 30.0,
  title: str = "t-SNE of embeddings",
  process_index: int | None = None,
) -> pathlib.Path | None:
  """2-D t-SNE (scikit-learn) of at most ``max_points`` embeddings (seeded subsample), by label."""
  if not is_writer(process_index):
    return None
  from sklearn.manifold import TSNE

  x = np.asarray(embeddings, np.float32)
  y = np.asarray(labels).reshape(-1)
  rng = np.random.default_rng(seed)
  if x.shape[0] > max_points:
    keep = np.sort(rng.choice(x.shape[0], max_points, replace=False))
    x, y = x[keep], y[keep]
  perplexity = min(perplexity, max(1.0, (x.shape[0] - 1) / 3))
  xy = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
  fig = Figure(figsize=(5, 5))
  ax = fig.add_subplot()
  ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap="tab20", s=6)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(title)
  return _save(fig, path)


def plot_retrieval_grid(
  query_images: np.typing.ArrayLike,
  neighbor_images: np.typing.ArrayLike,
  neighbor_correct: np.typing.ArrayLike,
  path: str | pathlib.Path,
  process_index: int | None = None,
) -> pathlib.Path | None:
  """One row per query: the query, then its top neighbours framed green (same label) or red.

  Args:
    query_images: [Q, H, W, C] float in [0, 1] (C = 1 or 3).
    neighbor_images: [Q, K, H, W, C].
    neighbor_correct: [Q, K] bool.
  """
  if not is_writer(process_index):
    return None
  q = np.asarray(query_images, np.float32)
  n = np.asarray(neighbor_images, np.float32)
  ok = np.asarray(neighbor_correct, bool)
  num_q, k = ok.shape
  fig = Figure(figsize=(1.4 * (k + 1), 1.4 * num_q))
  axes = fig.subplots(num_q, k + 1, squeeze=False)

  def show(ax, img, color=None, label=""):
    img = np.clip(img, 0, 1)
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(label, fontsize=7)
    if color:
      for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(3)

  for r in range(num_q):
    show(axes[r, 0], q[r], label="query")
    for c in range(k):
      show(axes[r, c + 1], n[r, c], "tab:green" if ok[r, c] else "tab:red", f"#{c + 1}")
  return _save(fig, path)


def plot_one_shot_run(
  test_image: np.typing.ArrayLike,
  candidates: np.typing.ArrayLike,
  scores: np.typing.ArrayLike,
  truth: int,
  path: str | pathlib.Path,
  title: str = "",
  process_index: int | None = None,
) -> pathlib.Path | None:
  """One one-shot trial: the test item, then its N candidates with their scores.

  The chosen candidate (highest score) is framed green when right and red when wrong;
  the true class, when not chosen, is framed blue.

  Args:
    test_image: [H, W, C] float in [0, 1].
    candidates: [N, H, W, C], one training image per class.
    scores: [N], higher = more alike.
    truth: index of the test item's class among the candidates.
  """
  if not is_writer(process_index):
    return None
  cands, scores = np.asarray(candidates, np.float32), np.asarray(scores, np.float64)
  n, cols = len(cands), min(len(cands), 10)
  rows = 1 + -(-n // cols)
  chosen = int(np.argmax(scores))
  fig = Figure(figsize=(1.2 * cols, 1.35 * rows))
  axes = fig.subplots(rows, cols, squeeze=False)
  for ax in axes.ravel():
    ax.axis("off")

  def show(ax, img, label, color=None):
    ax.axis("on")
    ax.imshow(np.clip(img[..., 0], 0, 1), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(label, fontsize=7)
    for spine in ax.spines.values():
      spine.set_edgecolor(color or "lightgray")
      spine.set_linewidth(3 if color else 1)

  show(axes[0, 0], np.asarray(test_image, np.float32), "test item")
  for j in range(n):
    color = None
    if j == chosen:
      color = "tab:green" if j == truth else "tab:red"
    elif j == truth:
      color = "tab:blue"
    show(axes[1 + j // cols, j % cols], cands[j], f"{scores[j]:.3g}", color)
  if title:
    fig.suptitle(title, fontsize=8)
  return _save(fig, path)


def with_ci(stats: Mapping[str, Any], key: str, digits: int = 4, style: str = "[]") -> str:
  """``stats[key]`` with its 95% interval (``{key}_ci_low``, ``{key}_ci_high``) as text.

  ``style="[]"`` gives "0.9512 [0.9301, 0.9688]"; ``style="()"`` gives "0.951 (0.930-0.969)".
  """
  v, lo, hi = stats[key], stats[f"{key}_ci_low"], stats[f"{key}_ci_high"]
  if style == "()":
    return f"{v:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"
  return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def null_test_sentence(
  result: Mapping[str, float], name: str = "distances", alpha: float = 0.05
) -> str:
  """A plain sentence from `overlap.null_distance_test` output, worded as a test of isotropy.

  It says what the test can show: whether the distances follow the law of independent
  uniform unit vectors (isotropy), not whether the two sides share information.
  """
  d = int(result["dim"])
  head = (
    f"Isotropy test on {int(result['n'])} {name} (one per distinct record pair, independent "
    f"under the null): mean {result['observed_mean']:.4f}, std {result['observed_std']:.4f}, "
    f"against mean {result['null_mean']:.4f} and std {result['null_std']:.4f} for independent "
    f"uniform unit vectors in {d} dimensions (std ratio {result['std_ratio']:.2f}, "
    f"KS = {result['ks_statistic']:.3f}, p = {result['ks_pvalue']:.2g})."
  )
  if result["ks_pvalue"] >= alpha:
    return head + (
      f" At level {alpha:g} these distances are consistent with isotropic random vectors; "
      "that does not show the embeddings carry no structure."
    )
  return head + (
    f" At level {alpha:g} the embedding is not isotropic"
    + (
      " although the mean is near sqrt(2)"
      if abs(result["observed_mean"] - math.sqrt(2)) < 0.05
      else ""
    )
    + "; every trained embedding is anisotropic, so this is not evidence that the two sides "
    "share information (the identity permutation test asks that)."
  )


def jsonable(x: Any) -> Any:
  """`x` with arrays as lists and NaN/inf as None, ready for strict `json.dumps`."""
  return _jsonable(x)


def _cpu_model() -> str:
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.partition(":")[2].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


# Vector extensions that change which kernels XLA, oneDNN and faiss pick (and so speed,
# and results in the last bits), oldest first.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile")
ISA_CAP_VARIABLES = (
  "ATEN_CPU_CAPABILITY",
  "ONEDNN_MAX_CPU_ISA",
  "MKL_ENABLE_INSTRUCTIONS",
  "FAISS_SIMD_LEVEL",
  "OPENBLAS_CORETYPE",
)


def cpu_isa(cpuinfo: str | None = None) -> list[str]:
  """The extensions of `ISA_FLAGS` that the CPU reports (/proc/cpuinfo's first "flags"
  line, or `cpuinfo`'s), in `ISA_FLAGS`'s order; empty where there is no such line."""
  if cpuinfo is None:
    try:
      cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
      return []
  for line in cpuinfo.splitlines():
    if line.startswith("flags"):
      present = set(line.partition(":")[2].split())
      return [f for f in ISA_FLAGS if f in present]
  return []


def isa_caps(environ: dict | None = None) -> dict[str, str]:
  """The instruction-set caps in force from the environment: XLA's `--xla_cpu_max_isa`
  (in `$XLA_FLAGS`), PyTorch's `$ATEN_CPU_CAPABILITY`, oneDNN's `$ONEDNN_MAX_CPU_ISA`,
  MKL's `$MKL_ENABLE_INSTRUCTIONS`, faiss's `$FAISS_SIMD_LEVEL` and OpenBLAS's
  `$OPENBLAS_CORETYPE` (faiss's wheel bundles an OpenBLAS). A benchmark run under such
  caps stands in for a CPU with fewer extensions (README, Performance)."""
  env = os.environ if environ is None else environ
  caps = {}
  for flag in env.get("XLA_FLAGS", "").split():
    if flag.startswith("--xla_cpu_max_isa="):
      caps["xla"] = flag.partition("=")[2]
  for name in ISA_CAP_VARIABLES:
    if env.get(name):
      caps[name] = env[name]
  return caps


def machine_summary() -> str:
  """One line for a benchmark's output: CPU model, core count, extensions and caps."""
  caps = isa_caps()
  capped = f"; capped: {', '.join(f'{k}={v}' for k, v in caps.items())}" if caps else ""
  return (
    f"{_cpu_model()}, {os.cpu_count()} CPUs, {' '.join(cpu_isa()) or 'extensions unknown'}"
    f"{capped}; load average {os.getloadavg()[0]:.1f}"
  )


def environment() -> dict[str, Any]:
  """Versions, platform and CPU model the run used (results vary across CPUs)."""
  import jaxlib  # noqa: PLC0415

  return {
    "jax": jax.__version__,
    "jaxlib": jaxlib.__version__,
    "python": platform.python_version(),
    "platform": platform.platform(),
    "cpu": _cpu_model(),
    "cpu_isa": cpu_isa(),
    "isa_caps": isa_caps(),
    "cpu_count": os.cpu_count(),
    "devices": [str(d.device_kind) for d in jax.devices()],
    # The allocator's settings change speed, never results (`experiments.run`).
    "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
    # XLA's flags choose kernels (`jaxsim.xla_cpu`): results may differ in the last bits.
    "xla_flags": os.environ.get("XLA_FLAGS"),
  }


def _jsonable(x: Any) -> Any:
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return _jsonable(x.tolist())
  if isinstance(x, (np.generic, jax.Array)):
    return _jsonable(np.asarray(x).item())
  if isinstance(x, float) and not math.isfinite(x):
    return None
  return x


def write_metrics_json(
  metrics: Mapping[str, Any], workdir: str | pathlib.Path, process_index: int | None = None
) -> pathlib.Path | None:
  """Write ``workdir/metrics.json`` (nested dict of flat metric dicts; NaN/inf as null)."""
  if not is_writer(process_index):
    return None
  return write_json(metrics, pathlib.Path(workdir) / "metrics.json", process_index)


MANIFEST = "split_manifest.json"  # every task's split manifest, in its workdir


def write_json(
  obj: Any, path: str | pathlib.Path, process_index: int | None = None
) -> pathlib.Path | None:
  """Write `obj` as strict JSON (NaN/inf as null) to `path`, on the writing process only."""
  if not is_writer(process_index):
    return None
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False))
  return path


def write_arrays(
  path: str | pathlib.Path, arrays: Mapping[str, np.ndarray], process_index: int | None = None
) -> pathlib.Path | None:
  """Write named arrays to one `.npz` file, on the writing process only."""
  if not is_writer(process_index):
    return None
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, **arrays)
  return path


def write_files(
  files: Mapping[str, bytes | str], root: str | pathlib.Path, process_index: int | None = None
) -> pathlib.Path | None:
  """Writes `{relative path: bytes or text}` under `root`, on the writing process only."""
  if not is_writer(process_index):
    return None
  root = pathlib.Path(root)
  for rel, data in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
      path.write_bytes(data)
    else:
      path.write_text(data)
  return root


def write_manifest(
  manifest: Mapping[str, Any], workdir: str | pathlib.Path, process_index: int | None = None
) -> pathlib.Path | None:
  """Write a split manifest (`jaxsim.data.splits.manifest`) to ``workdir/split_manifest.json``."""
  return write_json(manifest, pathlib.Path(workdir) / MANIFEST, process_index)


def add_to_report(
  workdir: str | pathlib.Path,
  entries: Mapping[str, Any],
  sentence: str = "",
  process_index: int | None = None,
) -> None:
  """Adds ``entries`` to an existing ``workdir/metrics.json`` and ``sentence`` to report.md."""
  if not is_writer(process_index):
    return
  workdir = pathlib.Path(workdir)
  path = workdir / "metrics.json"
  metrics = json.loads(path.read_text()) if path.is_file() else {}
  write_metrics_json({**metrics, **entries}, workdir, process_index)
  report_md = workdir / "report.md"
  if sentence and report_md.is_file():
    report_md.write_text(report_md.read_text() + "\n" + sentence + "\n")


def _fmt(v: Any) -> str:
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return "n/a"
  if isinstance(v, float):
    if v.is_integer() and abs(v) < 1e9:
      return str(int(v))
    return f"{v:.4g}"
  return str(v)


def _flatten(prefix: str, tree: Mapping[str, Any], out: dict[str, Mapping[str, Any]]) -> None:
  leaves = {k: v for k, v in tree.items() if not isinstance(v, Mapping)}
  if leaves:
    out[prefix or "metrics"] = leaves
  for k, v in tree.items():
    if isinstance(v, Mapping):
      _flatten(f"{prefix}/{k}" if prefix else str(k), v, out)


def write_report_md(
  metrics: Mapping[str, Any],
  workdir: str | pathlib.Path,
  title: str,
  figures: Mapping[str, str | pathlib.Path] | None = None,
  sentences: Sequence[str] = (),
  process_index: int | None = None,
) -> pathlib.Path | None:
  """Write ``workdir/report.md``: title, plain sentences, one table per flat metric dict, figures.

  Args:
    metrics: the nested dict written to metrics.json.
    workdir: run directory (absolute or relative to the current directory); figure
      links are made relative to it, i.e. to report.md.
    title: report title.
    figures: ``{caption: path}``.
    sentences: findings in words (e.g. `null_test_sentence`), shown first.
    process_index: see `is_writer`.
  """
  if not is_writer(process_index):
    return None
  workdir = pathlib.Path(workdir)
  lines = [f"# {title}", ""]
  for s in sentences:
    lines += [s, ""]
  groups: dict[str, Mapping[str, Any]] = {}
  _flatten("", metrics, groups)
  for group, leaves in groups.items():
    lines += [f"## {group}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(_jsonable(v))} |" for k, v in leaves.items()]
    lines.append("")
  if figures:
    lines += ["## Figures", ""]
    for caption, p in figures.items():
      # Relative to report.md wherever the workdir is (figure paths are absolute or
      # relative to the current directory, like the workdir itself).
      rel = pathlib.Path(os.path.relpath(pathlib.Path(p).absolute(), workdir.absolute()))
      lines += [f"![{caption}]({rel.as_posix()})", "", f"*{caption}*", ""]
  lines.append("Full numbers: [metrics.json](metrics.json).")
  path = workdir / "report.md"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n")
  return path


def headline_rows(names, rows: Mapping[str, str]) -> dict[str, str]:
  """A `summary_table` headline repeated per model: ``{label: path}`` with ``{name}`` filled in."""
  return {label.format(name=n): path.format(name=n) for n in names for label, path in rows.items()}


def summary_table(metrics: Mapping[str, Any], headline: Mapping[str, str]) -> str:
  """A short text table of headline metrics: label, value and its 95% CI where there is one.

  Args:
    metrics: the task's metrics (nested dicts).
    headline: label -> dotted path into `metrics` (e.g. "cross_modal.test_overlap.auc");
      a sibling `{name}_ci_low` / `{name}_ci_high` is shown as the interval. Strings
      (e.g. a chosen rule) are shown as they are; missing paths are skipped.
  """
  rows = []
  for label, path in headline.items():
    *parents, name = path.split(".")
    node: Any = metrics
    for key in parents:
      node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping) or name not in node:
      continue
    value = node[name]
    low, high = node.get(f"{name}_ci_low"), node.get(f"{name}_ci_high")
    shown = value if isinstance(value, str) else _fmt(value)
    ci = f"{_fmt(low)}-{_fmt(high)}" if low is not None and high is not None else ""
    rows.append((label, shown, ci))
  if not rows:
    return ""
  w0 = max(len(r[0]) for r in rows + [("metric", "", "")])
  w1 = max(len(r[1]) for r in rows + [("", "value", "")])
  lines = [f"{'metric':<{w0}}  {'value':>{w1}}  95% CI", f"{'-' * w0}  {'-' * w1}  ------"]
  lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
  return "\n".join(lines)


def _fmt(x: Any) -> str:
  if x is None or (isinstance(x, float) and math.isnan(x)):
    return "n/a"
  return f"{x:.4g}" if isinstance(x, (int, float)) else str(x)
