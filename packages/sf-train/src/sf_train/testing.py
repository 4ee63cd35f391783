"""Offline test doubles: a small byte-level BPE tokenizer and a tiny random Llama.

Tests, the demo and the benchmarks cannot download a model, so they build one: the tokenizer is
trained with `tokenizers` on text given by the caller (for instance the workflow templates) and
wrapped in `PreTrainedTokenizerFast`; the model is a `LlamaForCausalLM` with random weights from
a small `LlamaConfig` (the same architecture as Llama-3.1-8B, scaled down: GQA, RoPE, SwiGLU,
q/k/v/o projections, so LoRA targets the same module names).

Everything here is deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "build_line_tokenizer",
    "build_tiny_llama",
    "build_tokenizer",
    "save_tiny_model",
]

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"


def build_tokenizer(
    texts: Iterable[str], *, vocab_size: int = 512, min_frequency: int = 2, merge_across_words: bool = False
) -> Any:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for transformers.

    Byte-level, so any string encodes (no unknown tokens) and decoding is lossless. With
    ``merge_across_words`` the text is not pre-split into words, so merges may span spaces
    within a line: boilerplate lines that repeat in the corpus (a workflow template's) become
    one token each, which keeps CPU training and sampling short. Tokens never cross a line end
    (so a prompt ending with a newline tokenizes the same alone and followed by a completion)
    and digits are always single tokens.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<s>``, ``</s>`` and ``<pad>`` as bos/eos/pad, padding
        on the left (what generation wants; training collators pad explicitly).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not merge_across_words)
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            # a token never spans a line end, so a prompt ending in a newline is always a token
            # boundary: prompt + completion tokenizes as prompt tokens + completion tokens
            pre_tokenizers.Split("\n", behavior="merged_with_previous"),
            # digits stay single tokens, so numbers never merge into the words around them
            pre_tokenizers.Digits(individual_digits=True),
            byte_level,
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return _wrap(tok)


def build_line_tokenizer(texts: Iterable[str]) -> Any:
    """A closed-vocabulary tokenizer whose tokens are whole lines (and single digits) of ``texts``.

    Every distinct line of the corpus (newline included; digits split off) is one token, so a
    model can only write lines it has seen: a workflow template's lines, its variants, the
    prompt lines. Anything else encodes as ``<unk>``. Used by the CPU demo, where it keeps
    sequences to a dozen tokens and makes every sample a sequence of real lines.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="merged_with_previous"),
            pre_tokenizers.Digits(individual_digits=True),
        ]
    )
    vocab: dict[str, int] = {}
    for special in (PAD, BOS, EOS, UNK):
        vocab[special] = len(vocab)
    for digit in "0123456789":
        vocab[digit] = len(vocab)
    for text in texts:
        for piece, _ in pre.pre_tokenize_str(text):
            vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Fuse()
    return _wrap(tok)


def _wrap(tok: Any) -> Any:
    """``tok`` as a left-padding ``PreTrainedTokenizerFast`` with the test special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def build_tiny_llama(
    tokenizer: Any,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
    seed: int = 0,
) -> Any:
    """A randomly initialised `LlamaForCausalLM` sized for CPU tests (float32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def save_tiny_model(
    directory: str | Path, texts: Iterable[str], *, seed: int = 0, **model_kwargs: Any
) -> Path:
    """Build a tokenizer on ``texts`` and a tiny Llama, save both to ``directory``; return it.

    The directory then works as ``model_name_or_path`` for the loop and the CLI.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(texts)
    model = build_tiny_llama(tokenizer, seed=seed, **model_kwargs)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
