r"""Per-convolution times of a ResNet-18 step: XLA (jax.lax.conv) vs PyTorch, CPU.

    python -m benchmarks.conv_layers [--size=64] [--batch=64] [--repeats=5]
        [--impls=xla,im2col,auto,torch]

For every distinct convolution of a ResNet-18 (ImageNet stem) at `--size` pixels it
prints the median milliseconds of the forward pass, of the input gradient and of
the kernel gradient, for XLA's convolution, for jaxsim's im2col convolution, for
`auto` (im2col where an output side is smaller than the kernel, XLA elsewhere: what
jaxsim's ResNets use; see `jaxsim.models.conv`) and for PyTorch, and the totals
weighted by how often each convolution occurs in one tower. This is the breakdown
behind the train-step ratio printed by `python -m benchmarks.train_step`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.train_step import configure_xla

NHWC = ("NHWC", "HWIO", "NHWC")


def resnet18_convs(size: int) -> list[tuple[str, int, int, int, int, int, int]]:
  """(name, input side, in channels, out channels, kernel, stride, count per tower)."""
  s = size // 2
  convs = [("stem 7x7/2", size, 3, 64, 7, 2, 1)]
  s //= 2  # max-pool
  convs.append((f"3x3 64 @{s}", s, 64, 64, 3, 1, 4))
  c = 64
  for width in (128, 256, 512):
    convs.append((f"3x3/2 {c}->{width} @{s}", s, c, width, 3, 2, 1))
    convs.append((f"1x1/2 {c}->{width} @{s}", s, c, width, 1, 2, 1))
    s //= 2
    convs.append((f"3x3 {width} @{s}", s, width, width, 3, 1, 3))
    c = width
  return convs


def _median_ms(fn, repeats: int) -> float:
  fn()
  fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return 1e3 * statistics.median(times)


def bench_jax(conv, batch, spec, repeats):
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415

  _, side, cin, cout, k, stride, _ = spec
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, side, side, cin)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32) * 0.05
  f = lambda x, w: conv(x, w, stride, (k - 1) // 2)  # noqa: E731
  y, vjp = jax.vjp(f, x, w)
  g = jnp.ones_like(y)
  fwd = jax.jit(f)
  dx = jax.jit(lambda x, w, g: jax.vjp(lambda x: f(x, w), x)[1](g)[0])
  dw = jax.jit(lambda x, w, g: jax.vjp(lambda w: f(x, w), w)[1](g)[0])
  return (
    _median_ms(lambda: fwd(x, w).block_until_ready(), repeats),
    _median_ms(lambda: dx(x, w, g).block_until_ready(), repeats),
    _median_ms(lambda: dw(x, w, g).block_until_ready(), repeats),
  )


def bench_torch(batch, spec, repeats):
  import torch  # noqa: PLC0415

  _, side, cin, cout, k, stride, _ = spec
  rng = np.random.default_rng(0)
  x = torch.from_numpy(rng.normal(size=(batch, cin, side, side)).astype(np.float32))
  w = torch.from_numpy((0.05 * rng.normal(size=(cout, cin, k, k))).astype(np.float32))
  conv = lambda x, w: torch.nn.functional.conv2d(x, w, stride=stride, padding=(k - 1) // 2)  # noqa: E731
  with torch.no_grad():
    g = torch.ones_like(conv(x, w))

  def grad(wrt):
    xx = x.clone().requires_grad_(wrt == "x")
    ww = w.clone().requires_grad_(wrt == "w")
    y = conv(xx, ww)
    torch.autograd.grad(y, xx if wrt == "x" else ww, g)

  def fwd():
    with torch.no_grad():
      conv(x, w)

  # The input gradient of the first layer is never needed in a network (the stem's
  # input is data); PyTorch skips it too, but it is timed here for completeness.
  return (
    _median_ms(fwd, repeats),
    _median_ms(lambda: grad("x"), repeats),
    _median_ms(lambda: grad("w"), repeats),
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--impls", default="xla,im2col,auto,torch")
  args = parser.parse_args()
  configure_xla()
  impls = args.impls.split(",")

  import jax  # noqa: PLC0415

  from jaxsim.models import conv as conv_lib  # noqa: PLC0415

  def square(conv):  # (x, w, stride, pad) -> conv with NHWC/HWIO and symmetric padding
    return lambda x, w, s, p: conv(x, w, (s, s), [(p, p)] * 2, dimension_numbers=NHWC)

  jax_convs = {name: square(conv_lib.CONVS[name]) for name in ("xla", "im2col", "auto")}
  print(f"ResNet-18 convolutions, batch {args.batch}, {args.size}x{args.size} input, median ms")
  header = f"{'conv':<26}{'n':>3}" + "".join(f"{i + ' fwd/dx/dw':>26}" for i in impls)
  print(header)
  totals = {i: np.zeros(3) for i in impls}
  for spec in resnet18_convs(args.size):
    cells = []
    for impl in impls:
      t = (
        bench_torch(args.batch, spec, args.repeats)
        if impl == "torch"
        else bench_jax(jax_convs[impl], args.batch, spec, args.repeats)
      )
      totals[impl] += spec[-1] * np.asarray(t)
      cells.append(f"{t[0]:8.1f}{t[1]:8.1f}{t[2]:8.1f}  ")
    print(f"{spec[0]:<26}{spec[-1]:>3}" + "".join(f"{c:>26}" for c in cells), flush=True)
  print(
    f"{'total per tower':<29}"
    + "".join(f"{t[0]:8.1f}{t[1]:8.1f}{t[2]:8.1f}  " for t in totals.values())
  )
  print(f"jax backend: {jax.default_backend()}")


if __name__ == "__main__":
  main()
