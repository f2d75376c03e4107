"""A small causal transformer language model (GPT-2 layout) with a KV cache.

Pre-LayerNorm blocks, learned positions, tanh-GELU MLP and an output layer tied to the
token embedding, named as in GPT-2 so :mod:`rlfoundry.language.hf_adapter` can load a
Hugging Face GPT-2 checkpoint into it. A scalar value head on the final hidden state
serves learners with a critic (token-level PPO); the others ignore it.

Two ways to run it: ``__call__(tokens)`` scores a whole sequence at once (training), and
``decode(token, pos, cache)`` takes one token and a cache of past keys and values
(generation inside ``lax.scan``). Both compute the same function of the prefix.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

LN_EPS = 1e-5


class Block(nn.Module):
    d_model: int
    num_heads: int

    def setup(self) -> None:
        self.ln_1 = nn.LayerNorm(epsilon=LN_EPS)
        self.c_attn = nn.Dense(3 * self.d_model)
        self.attn_proj = nn.Dense(self.d_model)
        self.ln_2 = nn.LayerNorm(epsilon=LN_EPS)
        self.c_fc = nn.Dense(4 * self.d_model)
        self.mlp_proj = nn.Dense(self.d_model)

    def __call__(
        self, x: jax.Array, mask: jax.Array, cache: tuple[jax.Array, jax.Array] | None = None,
        pos: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array] | None]:
        """``x`` [B, T, d]; ``mask`` [T, S] (query may see key); with ``cache`` (keys and
        values [B, S, H, hd]) the T new keys/values are written at ``pos`` first."""
        b, t, d = x.shape
        hd = d // self.num_heads
        q, k, v = jnp.split(self.c_attn(self.ln_1(x)), 3, axis=-1)
        q, k, v = (a.reshape(b, t, self.num_heads, hd) for a in (q, k, v))
        if cache is not None:
            k = jax.lax.dynamic_update_slice(cache[0], k, (0, pos, 0, 0))
            v = jax.lax.dynamic_update_slice(cache[1], v, (0, pos, 0, 0))
            cache = (k, v)
        scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(hd)
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v)
        x = x + self.attn_proj(out.reshape(b, t, d))
        h = nn.gelu(self.c_fc(self.ln_2(x)), approximate=True)
        return x + self.mlp_proj(h), cache


class TransformerLM(nn.Module):
    """Causal LM over ``vocab_size`` tokens and at most ``max_len`` positions.

    Returns ``(logits [..., V], value [...])`` for every position. With ``token_ids`` (a
    pretrained model's id for each token of an environment's vocabulary, see
    :func:`rlfoundry.language.hf_adapter.env_token_ids`) it reads and writes environment
    ids: inputs are embedded as their model tokens and logits cover the environment's
    tokens only (V = len(token_ids)), so trajectories never leave the environment's ids.
    """

    vocab_size: int
    max_len: int
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    token_ids: tuple[int, ...] | None = None

    def setup(self) -> None:
        self.wte = nn.Embed(self.vocab_size, self.d_model,
                            embedding_init=nn.initializers.normal(0.02))
        self.wpe = nn.Embed(self.max_len, self.d_model,
                            embedding_init=nn.initializers.normal(0.01))
        self.blocks = [Block(self.d_model, self.num_heads) for _ in range(self.num_layers)]
        self.ln_f = nn.LayerNorm(epsilon=LN_EPS)
        self.value_head = nn.Dense(1, kernel_init=nn.initializers.zeros)

    def _embed(self, tokens: jax.Array) -> jax.Array:
        if self.token_ids is not None:
            tokens = jnp.asarray(self.token_ids, jnp.int32)[tokens]
        return self.wte(tokens)

    def _heads(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = self.ln_f(x)
        if self.token_ids is None:
            logits = self.wte.attend(h)
        else:  # tied output layer, only the environment's rows
            rows = jnp.take(self.wte.embedding, jnp.asarray(self.token_ids, jnp.int32), axis=0)
            logits = h @ rows.T
            if self.token_ids[0] in self.token_ids[1:]:  # <pad> shares a model token: never say it
                logits = logits.at[..., 0].set(jnp.finfo(logits.dtype).min)
        return logits, self.value_head(h)[..., 0]

    def __call__(self, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Score ``tokens`` [B, T]: logits [B, T, V] and values [B, T]."""
        t = tokens.shape[-1]
        x = self._embed(tokens) + self.wpe(jnp.arange(t))
        mask = jnp.tril(jnp.ones((t, t), bool))
        for block in self.blocks:
            x, _ = block(x, mask)
        return self._heads(x)

    def decode(
        self, token: jax.Array, pos: jax.Array, cache: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Feed ``token`` [B] at position ``pos``; ``cache`` [layers, 2, B, max_len, H, hd]
        holds earlier keys/values. Returns logits [B, V], value [B] and the new cache."""
        x = self._embed(token)[:, None] + self.wpe(pos)
        mask = (jnp.arange(self.max_len) <= pos)[None, :]
        layers = []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(x, mask, (cache[i, 0], cache[i, 1]), pos)
            layers.append(jnp.stack([k, v]))
        logits, value = self._heads(x[:, 0])
        return logits, value, jnp.stack(layers)

    def empty_cache(self, batch: int) -> jax.Array:
        hd = self.d_model // self.num_heads
        return jnp.zeros((self.num_layers, 2, batch, self.max_len, self.num_heads, hd))


def count_params(params: object) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
