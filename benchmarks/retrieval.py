"""Exact top-10 search: jaxsim versus faiss-cpu IndexFlatIP on the same data, same run.

Run from the repository root (faiss-cpu comes with the `bench` extra):

  python -m benchmarks.retrieval
  python -m benchmarks.retrieval --num_gallery=100000 --dim=256 --num_queries=2000 --repeats=5
  taskset -c 1 python -m benchmarks.retrieval --single_thread   # work per core

Prints queries per second for jaxsim's exact tiled search
(`jaxsim.evaluate.search.top_k_search`) and for faiss (best and
median of `--repeats` timed runs, interleaved, after one warm-up call that also
compiles), the ratio jaxsim / faiss, and how many returned neighbour indices agree with
faiss. The data are random unit vectors (seeded),
so scores are inner products = cosine similarities.
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
  parser.add_argument("--gallery_tile", type=int, default=4096)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--single_thread",
    action="store_true",
    help="one thread for XLA and faiss: compares work per core, robust to other load",
  )
  args = parser.parse_args()
  if args.single_thread:
    # Must be set before JAX starts its CPU backend.
    os.environ["XLA_FLAGS"] = (
      os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
    ).strip()
  import jax

  from jaxsim.evaluate import search

  rng = np.random.default_rng(args.seed)
  gallery = rng.standard_normal((args.num_gallery, args.dim), dtype=np.float32)
  gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
  queries = rng.standard_normal((args.num_queries, args.dim), dtype=np.float32)
  queries /= np.linalg.norm(queries, axis=1, keepdims=True)

  print(
    f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} CPUs, load "
    f"average {os.getloadavg()[0]:.1f}; gallery {gallery.shape}, {args.num_queries} queries, "
    f"exact top-{args.k}; best of {args.repeats} interleaved runs after a warm-up"
  )

  gallery_dev, queries_dev = jax.device_put(gallery), jax.device_put(queries)
  naive = jax.jit(lambda q, g: jax.lax.top_k(q @ g.T, args.k))
  methods = {
    "jaxsim top_k_search": lambda: search.top_k_search(
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
    faiss_name = f"faiss IndexFlatIP ({faiss.omp_get_max_threads()} threads)"
    methods[faiss_name] = lambda: index.search(queries, args.k)
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
  for name in list(methods)[:2]:
    same = np.mean(results[name][1] == results[faiss_name][1])
    print(
      f"ratio {name} / faiss: {t_faiss / min(times[name]):.2f}x "
      f"(neighbour indices identical to faiss: {same:.4%})"
    )


if __name__ == "__main__":
  main()
