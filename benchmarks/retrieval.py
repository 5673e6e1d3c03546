"""Exact top-10 search: jaxsim versus faiss-cpu IndexFlatIP on the same data, same run.

Run from the repository root (faiss-cpu comes with the `bench` extra):

  python -m benchmarks.retrieval
  python -m benchmarks.retrieval --num_gallery=100000 --dim=256 --num_queries=2000 --repeats=5

Prints queries per second for each method (best of `--repeats` timed runs after one
warm-up call that also compiles), the ratio jaxsim / faiss, and how many of the
returned neighbour indices agree with faiss. The data are random unit vectors (seeded),
so scores are inner products = cosine similarities.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from jaxsim.evaluate import search


def _best_time(fn, repeats: int) -> float:
  fn()  # Warm-up: compiles, allocates, fills caches.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return min(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_gallery", type=int, default=100_000)
  parser.add_argument("--num_queries", type=int, default=2_000)
  parser.add_argument("--dim", type=int, default=256)
  parser.add_argument("--k", type=int, default=10)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--query_chunk", type=int, default=1024)
  parser.add_argument("--gallery_tile", type=int, default=8192)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  rng = np.random.default_rng(args.seed)
  gallery = rng.standard_normal((args.num_gallery, args.dim), dtype=np.float32)
  gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
  queries = rng.standard_normal((args.num_queries, args.dim), dtype=np.float32)
  queries /= np.linalg.norm(queries, axis=1, keepdims=True)

  print(
    f"jax {jax.__version__} on {jax.devices()[0].platform}; gallery {gallery.shape}, "
    f"{args.num_queries} queries, exact top-{args.k}, best of {args.repeats}"
  )

  result = {}

  def run_jaxsim():
    result["jaxsim"] = search.top_k_search(
      queries,
      gallery,
      args.k,
      metric="dot",
      query_chunk=args.query_chunk,
      gallery_tile=args.gallery_tile,
    )

  t_jax = _best_time(run_jaxsim, args.repeats)
  print(f"jaxsim top_k_search:   {args.num_queries / t_jax:9.0f} queries/s ({t_jax:.3f} s)")

  try:
    import faiss
  except ImportError:
    print("faiss-cpu is not installed (pip install -e '.[bench]'); no ratio printed")
    return
  index = faiss.IndexFlatIP(args.dim)
  index.add(gallery)

  def run_faiss():
    result["faiss"] = index.search(queries, args.k)

  t_faiss = _best_time(run_faiss, args.repeats)
  print(
    f"faiss IndexFlatIP:     {args.num_queries / t_faiss:9.0f} queries/s ({t_faiss:.3f} s, "
    f"{faiss.omp_get_max_threads()} threads)"
  )
  print(f"ratio jaxsim / faiss:  {t_faiss / t_jax:.2f}x")
  same = np.mean(result["jaxsim"][1] == result["faiss"][1])
  print(f"neighbour indices identical to faiss: {same:.4%}")


if __name__ == "__main__":
  main()
