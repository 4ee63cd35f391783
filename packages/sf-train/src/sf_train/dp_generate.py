r"""Data-parallel sampling: one generator per process (GPU), tasks sharded, merged in task order.

::

    accelerate launch [--config_file configs/accelerate/ddp_2gpu.yaml] -m sf_train.dp_generate \
        --model DIR [--adapter DIR] --prompts PROMPTS.jsonl --output SAMPLES.jsonl \
        [--k 8] [--seed 0] [--chunk-prompts 8] [--max-new-tokens 1000] [--temperature 0.2] [--top-p 0.95]

**Same results for any number of processes.** The prompts are cut into fixed chunks of
``chunk_prompts`` prompts (the unit of work, independent of the process count). Chunk ``j`` is
sampled in one ``model.generate`` call of ``chunk_prompts × k`` rows with the RNG seeded to
``seed + j``; chunks go round-robin to the processes (chunk ``j`` to rank ``j mod world``) and
are gathered back and merged in chunk order. A chunk therefore sees the same rows, padding,
shapes and seed whichever process runs it, so 1 process and N processes produce identical
completions in identical order (on GPUs, as far as the kernels are deterministic for equal
shapes, which cuBLAS/SDPA are on one GPU model).

This is not bit-equal to :class:`~sf_train.generate.hf.HFWorkflowGenerator` called once over all
prompts with one seed (that draws one RNG stream across its chunks); the 1-process run of this
module is the single-GPU reference.

Output: JSONL, one line per prompt in input order: ``{"index", "prompt", "completions": [k]}``,
written by process 0. Prompts file: JSONL with a ``prompt`` string per line (extra keys ignored,
so a pairs file or the loop's ``samples.jsonl`` works).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from sf_bench.jsonl import read_objects
from sf_train._entry import run_entry_point
from sf_train.errors import TrainConfigError, TrainError

__all__ = ["chunk_indices", "generate_data_parallel", "main", "read_prompts", "sample_to_file"]


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def chunk_indices(n_prompts: int, chunk_prompts: int, rank: int, world: int) -> list[int]:
    """The chunks of ``n_prompts`` prompts (``chunk_prompts`` each) that ``rank`` of ``world`` samples."""
    if chunk_prompts < 1 or world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad sharding: chunk_prompts={chunk_prompts}, rank={rank}, world={world}")
    n_chunks = -(-n_prompts // chunk_prompts)
    return list(range(rank, n_chunks, world))


def _all_gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def generate_data_parallel(
    generator: Any,
    prompts: Sequence[str],
    k: int,
    *,
    seed: int,
    chunk_prompts: int = 8,
    rank: int = 0,
    world: int = 1,
    gather: Callable[[Any], list[Any]] | None = None,
) -> list[list[str]]:
    """Sample ``k`` completions per prompt with this process's share of the chunks, then merge.

    Args:
        generator: A :class:`~sf_train.generate.base.BaseWorkflowGenerator` with a ``params``
            attribute (e.g. ``HFWorkflowGenerator``); its ``params.seed`` and ``batch_size`` are
            replaced per chunk and restored afterwards.
        prompts: All prompts (every process passes the same list).
        k: Completions per prompt.
        seed: Base seed; chunk ``j`` uses ``seed + j``.
        chunk_prompts: Prompts per chunk (one ``generate`` call of ``chunk_prompts × k`` rows).
        rank: This process's rank.
        world: Number of processes.
        gather: Collects one object from every rank (default: ``torch.distributed.all_gather_object``
            when a process group is up, else the identity).

    Returns:
        ``len(prompts)`` lists of ``k`` completions, in prompt order, on every rank.

    Raises:
        ValueError: ``k`` < 1 or bad sharding arguments.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    original = generator.params
    mine: dict[int, list[list[str]]] = {}
    try:
        for j in chunk_indices(len(prompts), chunk_prompts, rank, world):
            generator.params = dataclasses.replace(original, seed=seed + j, batch_size=chunk_prompts * k)
            mine[j] = generator.generate_texts(prompts[j * chunk_prompts : (j + 1) * chunk_prompts], k)
    finally:
        generator.params = original
    merged: dict[int, list[list[str]]] = {}
    for part in (gather or _all_gather)(mine):
        merged.update(part)
    out = [group for j in sorted(merged) for group in merged[j]]
    if len(out) != len(prompts):
        raise TrainError(f"data-parallel generation merged {len(out)} results for {len(prompts)} prompts")
    return out


def sample_to_file(
    generator: Any,
    prompts: Sequence[str],
    k: int,
    *,
    seed: int,
    chunk_prompts: int,
    output: str | Path,
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """:func:`generate_data_parallel`, then process 0 writes the samples JSONL (see the module docstring).

    Every process must call it (it gathers). ``generator.new_tokens`` is summed over processes.

    Returns:
        ``processes``, ``prompts``, ``k``, ``new_tokens`` (all processes), ``seconds`` (wall time
        of the slowest process) and ``tokens_per_s`` (their ratio).
    """
    start = time.perf_counter()
    before = generator.new_tokens
    groups = generate_data_parallel(
        generator, prompts, k, seed=seed, chunk_prompts=chunk_prompts, rank=rank, world=world
    )
    seconds = max(_all_gather(time.perf_counter() - start))  # the slowest process ends the call
    tokens = sum(_all_gather(generator.new_tokens - before))
    if rank == 0:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for index, (prompt, group) in enumerate(zip(prompts, groups, strict=True)):
                fh.write(json.dumps({"index": index, "prompt": prompt, "completions": group}) + "\n")
    return {
        "processes": world,
        "prompts": len(prompts),
        "k": k,
        "new_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1) if seconds > 0 else None,
    }


def read_prompts(path: str | Path) -> list[str]:
    """The ``prompt`` of every non-blank JSONL line of ``path``, in order.

    Raises:
        TrainConfigError: missing file, a line that is not a JSON object with a string ``prompt``,
            or no prompts.
    """
    path = Path(path)
    prompts = []
    for number, obj in read_objects(path, error=TrainConfigError):
        if not isinstance(obj.get("prompt"), str):
            raise TrainConfigError(f"{path}:{number}: needs a string `prompt`")
        prompts.append(obj["prompt"])
    if not prompts:
        raise TrainConfigError(f"prompts file {str(path)!r} has no prompts")
    return prompts


@click.command(name="dp_generate", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", required=True, type=click.Path(), help="Base model directory (local files only).")
@click.option("--adapter", type=click.Path(), default=None, help="LoRA adapter directory to sample with.")
@click.option(
    "--prompts", "prompts_file", required=True, type=click.Path(dir_okay=False), help="Prompts JSONL."
)
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="Samples JSONL (process 0).")
@click.option("--k", default=8, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--chunk-prompts",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Prompts per generate call (fixed unit of work; keep it equal across runs you compare).",
)
@click.option("--max-new-tokens", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.2, show_default=True, type=float)
@click.option("--top-p", default=0.95, show_default=True, type=float)
@click.option("--stop", default="</graph>", show_default=True, help="Stop string ('' = EOS only).")
@click.option(
    "--dtype",
    default="bfloat16",
    show_default=True,
    type=click.Choice(["bfloat16", "float16", "float32", "auto"]),
)
def dp_generate_command(
    model: str,
    adapter: str | None,
    prompts_file: str,
    output: str,
    k: int,
    seed: int,
    chunk_prompts: int,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    stop: str,
    dtype: str,
) -> None:
    """Sample K workflows per prompt, one generator per process (run under `accelerate launch`)."""
    prompts = read_prompts(prompts_file)
    if not Path(model).is_dir():
        raise TrainConfigError(f"--model {model!r} is not a directory (weights are never downloaded)")
    if adapter is not None and not (Path(adapter) / "adapter_config.json").is_file():
        raise TrainConfigError(f"--adapter {adapter!r} has no adapter_config.json")
    from types import SimpleNamespace

    import torch
    from accelerate import PartialState

    from sf_train.generate.base import GenerationParams
    from sf_train.generate.hf import HFWorkflowGenerator
    from sf_train.modeling import load_base_model, load_tokenizer

    cpu = _env_flag("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    state = PartialState(cpu=cpu)  # joins the process group accelerate launched (gloo on CPU, NCCL on GPUs)
    use_cpu = str(state.device).startswith("cpu")
    config = SimpleNamespace(
        model_name_or_path=model, tokenizer_name_or_path=None, dtype=dtype, use_cpu=use_cpu
    )
    tokenizer = load_tokenizer(config)
    policy = load_base_model(config).to(state.device)
    if adapter is not None:
        from peft import PeftModel

        policy = PeftModel.from_pretrained(policy, adapter)
    params = GenerationParams(
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        stop=stop or None,
        batch_size=chunk_prompts * k,
    )
    generator = HFWorkflowGenerator(policy, tokenizer, params)
    stats = sample_to_file(
        generator,
        prompts,
        k,
        seed=seed,
        chunk_prompts=chunk_prompts,
        output=output,
        rank=state.process_index,
        world=state.num_processes,
    )
    if state.is_main_process:
        click.echo(json.dumps({**stats, "device": str(state.device), "torch": torch.__version__}))
    state.wait_for_everyone()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code (0 ok, 1 generation error, 2 usage or config error)."""
    return run_entry_point(dp_generate_command, argv, "sf_train.dp_generate")


if __name__ == "__main__":
    sys.exit(main())
