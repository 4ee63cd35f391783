"""Plain transformers generation (always available).

The model is used in-process as it is, so a ``PeftModel`` samples with its current LoRA adapter
and nothing is merged or copied. Prompts are tokenized the way TRL tokenizes DPO prompts
(``tokenizer(prompt)``, i.e. with the tokenizer's own special tokens, no chat template: the
official run feeds raw prompt strings), left-padded and sampled ``k`` times each with
``num_return_sequences``; generation stops at EOS or at the stop string.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from sf_train.generate.base import BaseWorkflowGenerator, GenerationParams

__all__ = ["HFWorkflowGenerator", "StopOnString"]


class StopOnString:
    """A transformers stopping criterion: a sequence is done once its generated text contains ``stop``.

    Only the generated part is searched (a prompt may itself contain ``</graph>``),
    and only its last ``window`` tokens, so the check costs one small decode per step. Works
    with any tokenizer (transformers' own ``stop_strings`` needs a byte-level BPE vocabulary).
    """

    def __init__(self, tokenizer: Any, stop: str, prompt_length: int, window: int = 32) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self.prompt_length = prompt_length
        self.window = window

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        """A [batch] bool tensor on ``input_ids``' device: True for each row whose text contains ``stop``.

        Only the generated tokens (after ``prompt_length``) among the last ``window`` are decoded;
        ``scores`` is not used.
        """
        import torch

        start = max(self.prompt_length, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
        return torch.tensor([self.stop in t for t in tails], dtype=torch.bool, device=input_ids.device)


def _stopping(tokenizer: Any, stop: str | None, prompt_length: int) -> Any:
    from transformers import StoppingCriteria, StoppingCriteriaList

    if not stop:
        return StoppingCriteriaList()

    class _Criterion(StopOnString, StoppingCriteria):
        pass

    return StoppingCriteriaList([_Criterion(tokenizer, stop, prompt_length)])


class HFWorkflowGenerator(BaseWorkflowGenerator):
    """Sample workflows with ``model.generate``.

    Args:
        model: A causal LM or ``PeftModel`` (its active adapter is used).
        tokenizer: Its tokenizer (a pad token is required; EOS is used when missing).
        params: Sampling settings (official defaults).
        prompt_fn: Problem → prompt, for :meth:`generate`.

    Attributes:
        seconds: Wall-clock seconds spent in ``generate`` so far (for the cost accounting).
        new_tokens: Completion tokens produced so far.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        params: GenerationParams | None = None,
        *,
        prompt_fn: Callable[[Any], str] | None = None,
    ) -> None:
        super().__init__(params, prompt_fn=prompt_fn)
        self.model = model
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.seconds = 0.0
        self.new_tokens = 0

    def generation_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``model.generate`` derived from the params."""
        p = self.params
        kwargs: dict[str, Any] = {
            "max_new_tokens": p.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
        }
        if p.temperature > 0:
            kwargs.update(do_sample=True, temperature=p.temperature, top_p=p.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        return kwargs

    def _sample(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        import torch

        model, tok = self.model, self.tokenizer
        per_call = max(1, self.params.batch_size // k)
        kwargs = self.generation_kwargs()
        out: list[list[str]] = []
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        previous_side = tok.padding_side
        tok.padding_side = "left"
        rng = torch.random.fork_rng(devices=[]) if self.params.seed is not None else contextlib.nullcontext()
        try:
            with rng, torch.inference_mode():
                if self.params.seed is not None:
                    torch.manual_seed(self.params.seed)
                device = next(model.parameters()).device
                for at in range(0, len(prompts), per_call):
                    chunk = list(prompts[at : at + per_call])
                    enc = tok(chunk, return_tensors="pt", padding=True).to(device)
                    criteria = _stopping(tok, self.params.stop, enc["input_ids"].shape[1])
                    gen = model.generate(
                        **enc, num_return_sequences=k, stopping_criteria=criteria, use_cache=True, **kwargs
                    )
                    completions = gen[:, enc["input_ids"].shape[1] :]
                    texts = tok.batch_decode(completions, skip_special_tokens=True)
                    mask = (completions != tok.pad_token_id) & (completions != tok.eos_token_id)
                    self.new_tokens += int(mask.sum())
                    out.extend(texts[i * k : (i + 1) * k] for i in range(len(chunk)))
        finally:
            tok.padding_side = previous_side
            self.seconds += time.perf_counter() - start
            if was_training:
                model.train()
        return out
