"""A character-level text encoder for the randomised digit labels of seed project 4.

It reads the text itself ("Three", "3", "tree", "tHREE", "drei", ...) as
character ids and never sees the class id: learned character embeddings,
1-D convolutions of widths 1..max_ngram (character n-gram detectors), masked
max- and mean-pooling over positions, and an MLP to the embedding.
Seed project 4 instead fed a one-hot of the true digit to its text branch,
which turns the "alignment" into a lookup table.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsim.models.resnet import l2_normalize


class CharTextEncoder(nn.Module):
  """Character n-gram CNN: (text_ids [B, L] int, text_mask [B, L]) -> [B, dim].

  Attributes:
    vocab_size: number of character ids (ids must lie in [0, vocab_size)).
    embed_dim: character embedding width.
    features: filters per n-gram width.
    max_ngram: n-gram widths 1..max_ngram.
    hidden: MLP hidden width.
    dim: output embedding dimension.
    normalize: L2-normalise the output.
  """

  vocab_size: int = 128
  embed_dim: int = 32
  features: int = 64
  max_ngram: int = 3
  hidden: int = 128
  dim: int = 64
  normalize: bool = True

  @nn.compact
  def __call__(self, text_ids: jax.Array, text_mask: jax.Array, train: bool = False) -> jax.Array:
    del train
    if text_ids.ndim != 2 or text_mask.shape != text_ids.shape:
      raise ValueError(
        f"text_ids and text_mask must both be [B, L]; got {text_ids.shape} and {text_mask.shape}"
      )
    if not jnp.issubdtype(text_ids.dtype, jnp.integer):
      raise ValueError(f"text_ids must be integer character ids, got dtype {text_ids.dtype}")
    mask = text_mask.astype(jnp.float32)[..., None]  # [B, L, 1]
    x = nn.Embed(self.vocab_size, self.embed_dim)(text_ids) * mask
    pooled = []
    for n in range(1, self.max_ngram + 1):
      # 'SAME' padding keeps one output per position so the same mask applies.
      h = nn.relu(nn.Conv(self.features, (n,), padding="SAME", name=f"ngram{n}")(x))
      # Padding positions must not win the max nor count in the mean.
      pooled.append(jnp.max(jnp.where(mask > 0, h, -jnp.inf), axis=1))
      pooled.append(jnp.sum(h * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0))
    h = jnp.concatenate(pooled, axis=-1)
    # An all-padding row has max -inf; zero it so it stays finite.
    h = jnp.where(jnp.isfinite(h), h, 0.0)
    h = nn.relu(nn.Dense(self.hidden)(h))
    h = nn.Dense(self.dim)(h)
    return l2_normalize(h) if self.normalize else h
