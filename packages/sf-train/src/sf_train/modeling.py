"""Loading the generator and its LoRA adapter, from local files only.

Nothing is downloaded: ``model_name_or_path`` must be a directory or a model already in the
Hugging Face cache (``local_files_only=True``); otherwise :class:`MissingWeightsError` says so
in one line. The LoRA adapter is created fresh (seeded) for iteration 0 and continued from the
previous iteration's saved adapter afterwards, as the official run does.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sf_train.errors import MissingWeightsError

__all__ = ["attach_lora", "device_for", "load_base_model", "load_tokenizer", "save_adapter"]

_DTYPES = {"bfloat16": "bfloat16", "float16": "float16", "float32": "float32"}


def _missing(what: str, where: str, exc: Exception) -> MissingWeightsError:
    return MissingWeightsError(
        f"{what} not found locally at {where!r}: sf-train never downloads; point model_name_or_path at a "
        f"directory with the weights or pre-populate the Hugging Face cache ({type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''})"
    )


def device_for(config: Any) -> str:
    """``"cuda"`` when a GPU is visible and ``use_cpu`` is off, else ``"cpu"``.

    Under ``accelerate launch`` each process gets its local GPU.
    """
    import torch

    if getattr(config, "use_cpu", False) or not torch.cuda.is_available():
        return "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return f"cuda:{local}"


def load_tokenizer(config: Any) -> Any:
    """The tokenizer of ``config.tokenizer_name_or_path or config.model_name_or_path``.

    Raises:
        MissingWeightsError: no tokenizer files there (nothing is downloaded).
    """
    from transformers import AutoTokenizer

    where = config.tokenizer_name_or_path or config.model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise _missing("tokenizer", where, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(config: Any) -> Any:
    """The base causal LM in ``config.dtype`` on :func:`device_for`.

    Raises:
        MissingWeightsError: no weights there (nothing is downloaded).
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype: Any = "auto" if config.dtype == "auto" else getattr(torch, _DTYPES[config.dtype])
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(
            config.model_name_or_path, dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError) as exc:
        raise _missing("model weights", config.model_name_or_path, exc) from exc
    return model.to(device_for(config))


def attach_lora(model: Any, config: Any, adapter_dir: str | Path | None = None) -> Any:
    """Wrap ``model`` with the trainable LoRA adapter.

    The adapter is a fresh one (seeded with ``config.seed``) or the one saved in ``adapter_dir``.
    """
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import set_seed

    if adapter_dir is not None:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
    set_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def save_adapter(model: Any, directory: str | Path) -> Path:
    """Save the LoRA adapter (only) to ``directory`` atomically.

    It is written beside it, then renamed, so a kill never leaves a half-written adapter where the
    loop looks for one.
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(str(tmp))
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)
    return directory
