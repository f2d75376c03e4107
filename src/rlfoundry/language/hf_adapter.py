"""Pretrained causal language models from a local Hugging Face GPT-2 checkpoint.

``transformers`` 5 dropped its Flax models, so instead of depending on it we read a
checkpoint directory (``config.json`` + ``model.safetensors`` in GPT-2's layout) straight
into :class:`~rlfoundry.language.transformer.TransformerLM`, which has GPT-2's
architecture. Nothing is downloaded: point ``load_pretrained`` at a folder saved with
``save_pretrained`` (ours or ``transformers``'). Only the ``safetensors`` reader is
needed (no torch). The value head, which GPT-2 lacks, starts at zero.

To train such a model on a text environment, :func:`env_token_ids` maps each word of the
environment's declared vocabulary to the checkpoint tokenizer's id for it (read from the
folder's ``tokenizer.json`` or ``vocab.json``; every word must be one token, as GPT-2's
byte-level BPE writes it after a space: ``Ġ12``), and :func:`load_for_env` returns the
model reading and writing environment ids (``TransformerLM.token_ids``) with the
checkpoint's weights, its position table cut to the dialogue's length. The learners do
this when given ``pretrained=FOLDER``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlfoundry.errors import ConfigError
from rlfoundry.language.transformer import LN_EPS, TransformerLM
from rlfoundry.language.vocab import EOT, PAD, Vocab

CONFIG, WEIGHTS = "config.json", "model.safetensors"
# our parameter path -> GPT-2 tensor name (per block: {i})
_BLOCK = {
    ("ln_1", "scale"): "ln_1.weight", ("ln_1", "bias"): "ln_1.bias",
    ("c_attn", "kernel"): "attn.c_attn.weight", ("c_attn", "bias"): "attn.c_attn.bias",
    ("attn_proj", "kernel"): "attn.c_proj.weight", ("attn_proj", "bias"): "attn.c_proj.bias",
    ("ln_2", "scale"): "ln_2.weight", ("ln_2", "bias"): "ln_2.bias",
    ("c_fc", "kernel"): "mlp.c_fc.weight", ("c_fc", "bias"): "mlp.c_fc.bias",
    ("mlp_proj", "kernel"): "mlp.c_proj.weight", ("mlp_proj", "bias"): "mlp.c_proj.bias",
}
_TOP = {
    ("wte", "embedding"): "wte.weight", ("wpe", "embedding"): "wpe.weight",
    ("ln_f", "scale"): "ln_f.weight", ("ln_f", "bias"): "ln_f.bias",
}


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"{folder} is not a local GPT-2 checkpoint: it needs {CONFIG} and "
                          f"{WEIGHTS} (nothing is downloaded).")
    cfg = json.loads(path.read_text())
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ConfigError(f"{folder}: model_type {cfg.get('model_type')!r} is not supported; "
                          "only GPT-2-layout checkpoints load.")
    if cfg.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ConfigError(f"{folder}: activation {cfg['activation_function']!r} is not "
                          "supported (GPT-2's tanh GELU only).")
    if abs(float(cfg.get("layer_norm_epsilon", LN_EPS)) - LN_EPS) > 1e-12:
        raise ConfigError(f"{folder}: layer_norm_epsilon must be {LN_EPS}.")
    return cfg


def model_from_config(cfg: dict[str, Any]) -> TransformerLM:
    return TransformerLM(vocab_size=int(cfg["vocab_size"]), max_len=int(cfg["n_positions"]),
                         d_model=int(cfg["n_embd"]), num_layers=int(cfg["n_layer"]),
                         num_heads=int(cfg["n_head"]))


def load_pretrained(path: str | Path) -> tuple[TransformerLM, Any]:
    """The model and its parameters from a local GPT-2 checkpoint folder."""
    from safetensors.numpy import load_file

    folder = Path(path)
    cfg = _read_config(folder)
    model = model_from_config(cfg)
    tensors = load_file(str(folder / WEIGHTS))
    prefix = "transformer." if any(k.startswith("transformer.") for k in tensors) else ""

    def get(name: str) -> np.ndarray:
        if prefix + name not in tensors:
            raise ConfigError(f"{folder / WEIGHTS} has no tensor {prefix + name!r}; is it a "
                              "GPT-2 checkpoint?")
        return np.asarray(tensors[prefix + name], np.float32)

    params: dict[str, Any] = {}
    for (mod, leaf), name in _TOP.items():
        params.setdefault(mod, {})[leaf] = get(name)
    for i in range(model.num_layers):
        block: dict[str, Any] = {}
        for (mod, leaf), name in _BLOCK.items():
            block.setdefault(mod, {})[leaf] = get(f"h.{i}.{name}")
        params[f"blocks_{i}"] = block
    d = model.d_model
    params["value_head"] = {"kernel": np.zeros((d, 1), np.float32),
                            "bias": np.zeros((1,), np.float32)}
    return model, {"params": params}


def save_pretrained(model: TransformerLM, params: Any, path: str | Path) -> Path:
    """Write ``params`` as a GPT-2 checkpoint folder (the value head is not saved)."""
    from safetensors.numpy import save_file

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    p = params["params"]
    tensors = {f"transformer.{name}": np.asarray(p[mod][leaf], np.float32)
               for (mod, leaf), name in _TOP.items()}
    for i in range(model.num_layers):
        for (mod, leaf), name in _BLOCK.items():
            tensors[f"transformer.h.{i}.{name}"] = np.asarray(p[f"blocks_{i}"][mod][leaf],
                                                              np.float32)
    save_file(tensors, str(folder / WEIGHTS))
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
           "vocab_size": model.vocab_size, "n_positions": model.max_len,
           "n_embd": model.d_model, "n_layer": model.num_layers, "n_head": model.num_heads,
           "activation_function": "gelu_new", "layer_norm_epsilon": LN_EPS,
           "tie_word_embeddings": True}
    (folder / CONFIG).write_text(json.dumps(cfg, indent=2))
    return folder


def _tokenizer_vocab(folder: Path) -> tuple[dict[str, int], int | None]:
    """The checkpoint tokenizer's token -> id table and its end-of-text id."""
    fast, slow = folder / "tokenizer.json", folder / "vocab.json"
    if fast.is_file():
        data = json.loads(fast.read_text())
        table = dict(data["model"]["vocab"])
        table.update({t["content"]: int(t["id"]) for t in data.get("added_tokens", [])})
    elif slow.is_file():
        table = json.loads(slow.read_text())
    else:
        raise ConfigError(f"{folder} has no tokenizer (tokenizer.json or vocab.json); save the "
                          "checkpoint's tokenizer next to its weights.")
    eos = None
    tok_cfg = folder / "tokenizer_config.json"
    if tok_cfg.is_file():
        name = json.loads(tok_cfg.read_text()).get("eos_token")
        name = name.get("content") if isinstance(name, dict) else name
        eos = table.get(name) if name else None
    if eos is None:
        eos = table.get("<|endoftext|>")
    return table, eos


def env_token_ids(vocab: Vocab, folder: str | Path) -> tuple[int, ...]:
    """The checkpoint's token id for every token of ``vocab``: ``<eot>`` (and ``<pad>``,
    which the model then never generates) -> end-of-text; a word -> ``Ġword`` (the word
    after a space, as it appears in running text), else ``word``. One-line errors name a
    word that is not a single token, and words that would share one id."""
    folder = Path(folder)
    table, eos = _tokenizer_vocab(folder)
    if eos is None:
        raise ConfigError(f"{folder}'s tokenizer has no end-of-text token (<|endoftext|> or "
                          "tokenizer_config.json's eos_token) to play <eot>.")
    ids: list[int] = []
    for i, word in enumerate(vocab.tokens):
        if i in (PAD, EOT):
            ids.append(int(eos))
            continue
        found = table.get("\u0120" + word, table.get(word))
        if found is None:
            raise ConfigError(f"the environment word {word!r} is not a single token of "
                              f"{folder}'s tokenizer (tried {'Ġ' + word!r} and {word!r}).")
        ids.append(int(found))
    words = {}
    for word, tid in zip(vocab.tokens[2:], ids[2:], strict=True):
        if tid in words or tid == eos:
            raise ConfigError(f"environment words {words.get(tid, '<eot>')!r} and {word!r} "
                              f"map to the same token {tid} of {folder}'s tokenizer.")
        words[tid] = word
    return tuple(ids)


def load_for_env(path: str | Path, vocab: Vocab, length: int) -> tuple[TransformerLM, Any]:
    """A local GPT-2 checkpoint as a policy over ``vocab`` for dialogues of ``length``
    tokens: the model (``token_ids`` set, ``max_len = length``) and its parameters."""
    model, params = load_pretrained(path)
    if length > model.max_len:
        raise ConfigError(f"dialogues of {length} tokens exceed {path}'s {model.max_len} "
                          "positions; shorten the dialogue (num_steps) or use a larger model.")
    params["params"]["wpe"]["embedding"] = params["params"]["wpe"]["embedding"][:length]
    mapped = TransformerLM(model.vocab_size, length, model.d_model, model.num_layers,
                           model.num_heads, token_ids=env_token_ids(vocab, path))
    return mapped, params
