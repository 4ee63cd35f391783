r"""Synthetic model and data for scaling runs: a random-init Llama saved to disk, random-token pairs.

::

    python -m sf_train.synthetic --shape llama-3.1-8b --model-dir /tmp/m8b --pairs /tmp/pairs.jsonl \
        --n-pairs 200 --prompts /tmp/prompts.jsonl --n-prompts 64 [--prompt-len 512] [--completion-len 384]

Weights cannot be downloaded here and speed does not depend on them, so the multi-GPU runs use
the model of ``benchmarks/train_throughput.py``: ``meta-llama/Llama-3.1-8B``'s config with random
weights (bf16, about 16 GB on disk), and a word-level tokenizer with one word ``t<id>`` per token
id, so a text of ``n`` random words is exactly ``n`` tokens. Pairs are a ``prompt_len``-token prompt
and two completions of ``completion_len`` tokens (TRL appends EOS) with random scores
``s_w >= s_l``. Everything is a deterministic function of ``--seed``.

``--shape tiny`` writes the same thing at CPU size (2 layers, hidden 64, vocabulary 1,024).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import click

from sf_train.errors import TrainConfigError

__all__ = ["SHAPES", "main", "model_config", "save_model", "word_tokenizer", "write_pairs", "write_prompts"]

SHAPES = ("llama-3.1-8b", "tiny")
_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "abcdef", *dict.fromkeys("</graph>")]
"""Ids 0-12: pad, bos, eos, unk, then what transformers' StopStringCriteria probes (as the benchmark)."""
FIRST_WORD = len(_SPECIALS)


class _SpecialIds(TypedDict):
    """The ``LlamaConfig`` arguments every shape shares: the special tokens' ids, untied embeddings."""

    pad_token_id: int
    bos_token_id: int
    eos_token_id: int
    tie_word_embeddings: bool


def model_config(shape: str) -> Any:
    """The ``LlamaConfig`` of ``shape`` (``llama-3.1-8b``: Llama-3.1-8B's config.json; ``tiny``)."""
    from transformers import LlamaConfig

    ids = _SpecialIds(pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    if shape == "tiny":
        return LlamaConfig(
            vocab_size=1024,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            **ids,
        )
    if shape == "llama-3.1-8b":
        return LlamaConfig(
            vocab_size=128256,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
            **ids,
        )
    raise TrainConfigError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")


def word_tokenizer(vocab_size: int) -> Any:
    """One word per token, ``t<id>`` for every id from ``FIRST_WORD``, so random ids encode exactly.

    Ids 4-12 exist for transformers' ``StopStringCriteria``: its probe word ``abcdef`` and the
    characters of ``</graph>`` (random text never uses them); tokens decode back to back, so
    ``<`` ``/`` ``g``... spell ``</graph>``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {s: i for i, s in enumerate(_SPECIALS)}
    vocab.update({f"t{i}": i for i in range(FIRST_WORD, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )


def save_model(directory: str | Path, shape: str, *, seed: int = 0) -> Path:
    """Write a random-init model of ``shape`` (8B: bf16; tiny: float32) and its tokenizer.

    The 8B shape is built on the GPU when one is visible (else on the CPU: about 16 GB of RAM).
    """
    import torch
    from transformers import LlamaForCausalLM

    config = model_config(shape)
    dtype = torch.float32 if shape == "tiny" else torch.bfloat16
    device = "cuda" if torch.cuda.is_available() and shape != "tiny" else "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            torch.manual_seed(seed)
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    word_tokenizer(config.vocab_size).save_pretrained(directory)
    del model
    return directory


def _words(rng: Any, n: int, vocab: int) -> str:
    return " ".join(f"t{rng.randrange(FIRST_WORD, vocab)}" for _ in range(n))


def write_pairs(
    path: str | Path, n: int, *, vocab: int, prompt_len: int, completion_len: int, seed: int = 0
) -> Path:
    """Write ``n`` random-token pairs (the launch's pairs JSONL format) to ``path``."""
    import random

    rng = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            sw, sl = sorted((rng.random(), rng.random()), reverse=True)
            fh.write(
                json.dumps(
                    {
                        "prompt": _words(rng, prompt_len, vocab),
                        "chosen": " " + _words(rng, completion_len - 1, vocab),
                        "rejected": " " + _words(rng, completion_len - 1, vocab),
                        "chosen_score": sw,
                        "rejected_score": sl,
                    }
                )
                + "\n"
            )
    return path


def write_prompts(path: str | Path, n: int, *, vocab: int, prompt_len: int, seed: int = 0) -> Path:
    """Write ``n`` random-token prompts (JSONL ``{"prompt": ...}``) to ``path``."""
    import random

    rng = random.Random(seed + 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(json.dumps({"prompt": _words(rng, prompt_len, vocab)}) + "\n")
    return path


@click.command(name="synthetic", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--shape", type=click.Choice(SHAPES), default="llama-3.1-8b", show_default=True)
@click.option("--model-dir", type=click.Path(file_okay=False), default=None, help="Write the model here.")
@click.option("--pairs", type=click.Path(dir_okay=False), default=None, help="Write pairs JSONL here.")
@click.option("--n-pairs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--prompts", type=click.Path(dir_okay=False), default=None, help="Write prompts JSONL here.")
@click.option("--n-prompts", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--prompt-len", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--completion-len", type=click.IntRange(min=2), default=384, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def synthetic_command(
    shape: str,
    model_dir: str | None,
    pairs: str | None,
    n_pairs: int,
    prompts: str | None,
    n_prompts: int,
    prompt_len: int,
    completion_len: int,
    seed: int,
) -> None:
    """Write a random-init model of SHAPE and/or random-token pairs and prompts for it."""
    vocab = model_config(shape).vocab_size
    if model_dir is not None:
        click.echo(f"model: {save_model(model_dir, shape, seed=seed)}")
    if pairs is not None:
        written = write_pairs(
            pairs, n_pairs, vocab=vocab, prompt_len=prompt_len, completion_len=completion_len, seed=seed
        )
        click.echo(f"pairs: {written}")
    if prompts is not None:
        written = write_prompts(prompts, n_prompts, vocab=vocab, prompt_len=prompt_len, seed=seed)
        click.echo(f"prompts: {written}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code (0 ok, 2 usage error)."""
    from sf_train._entry import run_entry_point

    return run_entry_point(synthetic_command, argv, "sf_train.synthetic")


if __name__ == "__main__":
    sys.exit(main())
