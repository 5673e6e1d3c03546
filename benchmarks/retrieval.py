"""Exact top-10 search: jaxsim versus faiss-cpu IndexFlatIP on the same data, same run.

Run from the repository root (faiss-cpu comes with the `bench` extra):

  python -m benchmarks.retrieval
  python -m benchmarks.retrieval --num_gallery=100000 --dim=256 --num_queries=2000 --repeats=5
  python -m benchmarks.retrieval --single_thread   # work per core (pins itself to one CPU)
  python -m benchmarks.retrieval --ann     # approximate indexes at 1M x 128 (below)

Prints queries per second for jaxsim's exact tiled search
(`jaxsim.evaluate.search.ExactIndex`, and `top_k_search`, which also prepares the
gallery on each call) and for faiss (a prepared index, and a fresh index built and
searched on each call, the counterpart of `top_k_search`) (best and
median of `--repeats` timed runs, interleaved, after one warm-up call that also
compiles), the ratio jaxsim / faiss, and how many returned neighbour indices agree with
faiss. The data are random unit vectors (seeded),
so scores are inner products = cosine similarities.

``--ann``: large galleries (`jaxsim.evaluate.search.top_k` with a faiss backend). A
synthetic gallery of ``--ann_num_gallery`` x ``--ann_dim`` (default 1M x 128) unit
vectors drawn around ``--ann_clusters`` centres (default 20,000 identities of about 50
images, within-identity cosine about 0.8 at ``--ann_noise=0.5``, as embeddings of a
trained model; ``--ann_clusters=0`` draws uniformly on the sphere, the hardest case for
any index), and ``--ann_num_queries`` fresh queries from the same
centres. For exact search (jaxsim) and each faiss index it prints the build time,
queries/s (best of ``--repeats``) and recall@k: the fraction of the exact top-k that the
index returns.

faiss's exact index scores with the OpenBLAS its wheel bundles, and that library's CPU
detection picks the GEMM: `OPENBLAS_CORETYPE=SkylakeX` (AVX-512) or `=Haswell` (AVX2)
overrides it, for faiss only (numpy's OpenBLAS is another library). The faiss line names
the kernels it ran; compare against the fastest that the CPU supports.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_gallery", type=int, default=100_000)
  parser.add_argument("--num_queries", type=int, default=2_000)
  parser.add_argument("--dim", type=int, default=256)
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--query_chunk", type=int, default=512)
  parser.add_argument("--gallery_tile", type=int, default=8192)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--ann", action="store_true", help="approximate indexes, large gallery")
  parser.add_argument("--ann_num_gallery", type=int, default=1_000_000)
  parser.add_argument("--ann_dim", type=int, default=128)
  parser.add_argument("--ann_num_queries", type=int, default=1_000)
  parser.add_argument("--ann_clusters", type=int, default=20_000)
  parser.add_argument(
    "--ann_noise", type=float, default=0.5, help="noise norm relative to the centre's (1)"
  )
  parser.add_argument(
    "--ann_backends",
    default="faiss:HNSW32|efSearch=64;faiss:HNSW32|efSearch=256;faiss:IVF1024,Flat|nprobe=8;"
    "faiss:IVF1024,Flat|nprobe=32",
    help="';'-separated backend|params; one index is built per distinct backend",
  )
  parser.add_argument(
    "--single_thread",
    action="store_true",
    help="one thread for XLA and faiss: compares work per core, robust to other load",
  )
  args = parser.parse_args()
  if args.single_thread:
    # One core for every thread pool (XLA's YNNPACK dots keep a pool of their own).
    if hasattr(os, "sched_setaffinity"):  # Linux
      os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    # Must be set before JAX starts its CPU backend.
    os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()
  import jax

  from jaxsim import report
  from jaxsim.evaluate import search

  if args.ann:
    ann_benchmark(args)
    return

  rng = np.random.default_rng(args.seed)
  gallery = rng.standard_normal((args.num_gallery, args.dim), dtype=np.float32)
  gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
  queries = rng.standard_normal((args.num_queries, args.dim), dtype=np.float32)
  queries /= np.linalg.norm(queries, axis=1, keepdims=True)

  print(
    f"jax {jax.__version__} on {jax.devices()[0].platform}, {report.machine_summary()}; "
    f"gallery {gallery.shape}, {args.num_queries} queries, "
    f"exact top-{args.k}; best of {args.repeats} interleaved runs after a warm-up"
  )

  gallery_dev, queries_dev = jax.device_put(gallery), jax.device_put(queries)
  naive = jax.jit(lambda q, g: jax.lax.top_k(q @ g.T, args.k))
  # As faiss's index.add, the gallery is prepared (padded, tiled, on the device) once,
  # outside the timing; top_k_search prepares it on every call.
  index_start = time.perf_counter()
  exact_index = search.ExactIndex(gallery, "dot", gallery_tile=args.gallery_tile)
  print(f"ExactIndex built in {time.perf_counter() - index_start:.3f} s")
  methods = {
    "jaxsim ExactIndex.search": lambda: exact_index.search(
      queries, args.k, query_chunk=args.query_chunk
    ),
    "jaxsim top_k_search (per call)": lambda: search.top_k_search(
      queries,
      gallery,
      args.k,
      metric="dot",
      query_chunk=args.query_chunk,
      gallery_tile=args.gallery_tile,
    ),
  }
  # The untiled baseline: one matmul and lax.top_k over the whole [Q, N] score matrix.
  methods["naive jit matmul + lax.top_k"] = lambda: jax.block_until_ready(
    naive(queries_dev, gallery_dev)
  )
  try:
    import faiss

    index = faiss.IndexFlatIP(args.dim)
    index.add(gallery)
    if args.single_thread:
      faiss.omp_set_num_threads(1)
    simd = getattr(faiss, "SIMDConfig", None)  # faiss >= 1.12 dispatches at run time
    simd = f", {simd.get_level_name()}" if simd is not None else ""
    faiss_name = f"faiss IndexFlatIP ({faiss.omp_get_max_threads()} threads{simd}{_faiss_blas()})"
    methods[faiss_name] = lambda: index.search(queries, args.k)

    def faiss_per_call():
      fresh = faiss.IndexFlatIP(args.dim)
      fresh.add(gallery)
      return fresh.search(queries, args.k)

    methods["faiss add + search (per call)"] = faiss_per_call
  except ImportError:
    faiss_name = None
    print("faiss-cpu is not installed (pip install -e '.[bench]'); no ratio printed")

  results = {name: fn() for name, fn in methods.items()}  # warm-up, compile, keep results
  times = {name: [] for name in methods}
  cpu = {name: [] for name in methods}
  # Interleaved so that load from other processes hits every method alike.
  for _ in range(args.repeats):
    for name, fn in methods.items():
      start, start_cpu = time.perf_counter(), time.process_time()
      fn()
      times[name].append(time.perf_counter() - start)
      cpu[name].append(time.process_time() - start_cpu)
  for name, ts in times.items():
    best = min(ts)
    print(
      f"{name:32s} {args.num_queries / best:6.0f} queries/s (wall: best {best:.3f} s, "
      f"median {np.median(ts):.3f} s; CPU time: best {min(cpu[name]):.3f} s)"
    )
  if faiss_name is None:
    return
  t_faiss = min(times[faiss_name])
  for name in list(methods)[:3]:
    same = np.mean(results[name][1] == results[faiss_name][1])
    print(
      f"ratio {name} / faiss: {t_faiss / min(times[name]):.2f}x "
      f"(neighbour indices identical to faiss: {same:.4%})"
    )
  # Both sides preparing the gallery on every call: top_k_search against a fresh faiss
  # index (add, then search).
  per_call = "jaxsim top_k_search (per call)"
  ratio = min(times["faiss add + search (per call)"]) / min(times[per_call])
  print(f"ratio {per_call} / faiss add + search (per call): {ratio:.2f}x")


def _ann_data(args) -> tuple[np.ndarray, np.ndarray]:
  rng = np.random.default_rng(args.seed)
  n, d, c = args.ann_num_gallery, args.ann_dim, args.ann_clusters

  def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)

  if c == 0:
    g = unit(rng.standard_normal((n, d), dtype=np.float32))
    return g, unit(rng.standard_normal((args.ann_num_queries, d), dtype=np.float32))
  centres = unit(rng.standard_normal((c, d), dtype=np.float32))
  # Noise of norm about ann_noise around unit centres: at 0.5 two points of one cluster
  # have cosine about 0.8, as two images of one identity under a trained model.
  scale = args.ann_noise / np.sqrt(d)
  g = np.empty((n, d), np.float32)
  for start in range(0, n, 100_000):
    stop = min(start + 100_000, n)
    noise = scale * rng.standard_normal((stop - start, d), dtype=np.float32)
    g[start:stop] = unit(centres[rng.integers(0, c, stop - start)] + noise)
  noise = scale * rng.standard_normal((args.ann_num_queries, d), dtype=np.float32)
  q = unit(centres[rng.integers(0, c, args.ann_num_queries)] + noise)
  return g, q


def _best_time(fn, repeats):
  out = fn()  # warm-up (and compile)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return out, min(times)


def _faiss_blas() -> str:
  """Which BLAS kernels faiss's wheel runs: `IndexFlatIP` scores many queries with its
  bundled OpenBLAS, whose CPU detection decides the GEMM (README, Performance: the
  wheel's OpenBLAS 0.3.15 took a 2026 Intel Xeon for "Prescott", SSE3 kernels)."""
  try:
    import threadpoolctl  # noqa: PLC0415 (scikit-learn's dependency)
  except ImportError:
    return ""
  from jaxsim import report  # noqa: PLC0415

  for lib in threadpoolctl.threadpool_info():
    if "faiss" in lib.get("filepath", "") and lib.get("internal_api") in ("openblas", "mkl"):
      arch, isa = lib.get("architecture"), report.cpu_isa()
      best = "SkylakeX" if "avx512f" in isa else "Haswell" if "avx2" in isa else ""
      if lib["internal_api"] == "openblas" and best and arch not in _FAST_CORETYPES:
        print(
          f"note: faiss's OpenBLAS runs {arch} kernels on a CPU with "
          f"{' '.join(isa)}; for a fair ratio rerun with "
          f"OPENBLAS_CORETYPE={best} (README, Performance)",
          flush=True,
        )
      return f"; {lib['internal_api']} {lib.get('version')}, {arch} kernels"
  return ""


# OpenBLAS core types whose SGEMM uses AVX2 or AVX-512 (an older OpenBLAS that does not
# know a CPU falls back to "Prescott", SSE3).
_FAST_CORETYPES = ("Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids")


def ann_benchmark(args) -> None:
  """Exact search against faiss indexes on a large synthetic gallery: build, q/s, recall."""
  import faiss

  from jaxsim import report
  from jaxsim.evaluate import ann, search

  start = time.perf_counter()
  g, q = _ann_data(args)
  kind = (
    f"{args.ann_clusters} clusters, noise {args.ann_noise:g}"
    if args.ann_clusters
    else "uniform on the sphere"
  )
  print(
    f"gallery {g.shape} ({kind}), {q.shape[0]} queries, top-{args.k}, inner product; "
    f"{report.machine_summary()}; faiss {faiss.__version__} on {faiss.omp_get_max_threads()} "
    f"threads; data drawn in {time.perf_counter() - start:.1f} s"
  )
  (_, exact), t_exact = _best_time(lambda: search.top_k_search(q, g, args.k, "dot"), args.repeats)
  print(
    f"{'exact (jaxsim top_k_search, build included)':44s} build      -   "
    f"{q.shape[0] / t_exact:8.0f} q/s  recall@{args.k} 1.0000"
  )
  indexes = {}
  for spec in filter(None, args.ann_backends.split(";")):
    backend, _, params = spec.partition("|")
    if backend not in indexes:
      start = time.perf_counter()
      indexes[backend] = ann.FaissIndex(g, "dot", backend)
      build = time.perf_counter() - start
    else:
      build = float("nan")
    index = indexes[backend]
    if params:
      faiss.ParameterSpace().set_index_parameters(index.index, params)
    (_, idx), t = _best_time(lambda index=index: index.search(q, args.k), args.repeats)
    recall = np.mean([len(set(a) & set(b)) / args.k for a, b in zip(idx, exact, strict=True)])
    print(
      f"{backend + ' ' + params:44s} build {build:6.1f} s {q.shape[0] / t:8.0f} q/s  "
      f"recall@{args.k} {recall:.4f}  ({t_exact / t:.1f}x exact)"
    )


if __name__ == "__main__":
  main()
