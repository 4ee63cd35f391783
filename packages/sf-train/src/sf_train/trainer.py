"""`ScoreDPOTrainer`: ScoreFlow's Score-DPO on top of TRL's own `DPOTrainer`.

Score-DPO, as the official code computes it (Gen-Verse/ScoreFlow@2492563838f7
``ScoreFlow/DPOtrainer.py:1352-1358``), per pair::

    loss = −log σ(β · [f(s_w)·(log πθ(w|x) − log π_ref(w|x)) − (1 − f(s_l))·(log πθ(l|x) − log π_ref(l|x))])

with log-probabilities summed over completion tokens. The official code multiplies the policy
*and* reference sequence log-probs of the chosen completion by f(s_w) and those of the rejected
completion by 1 − f(s_l), then calls the unchanged DPO loss. This trainer does exactly that
without copying TRL's loss: while TRL's ``_compute_loss`` runs, a forward hook on the model
multiplies each row of the per-token log-probs it returns (policy forward and the
adapter-disabled reference forward alike) by that row's weight; with precomputed reference
log-probs the batch's reference values are multiplied instead. Everything after that
(the log-ratios, every ``loss_type``, the logged metrics) is TRL's code. At s_w = 1, s_l = 0
both weights are 1 and the result is TRL's DPO loss to the bit.

As in the official run, the logged ``rewards/*`` and ``logps/*`` metrics are score-weighted
too; ``scores/chosen`` and ``scores/rejected`` log the raw scores.

Scores flow through the collator: the dataset's ``chosen_score`` and ``rejected_score``
columns are kept by the trainer and stacked into float tensors by
:class:`ScoredPreferenceCollator`.

The reference model is the base model with the LoRA adapter disabled (``reference="base"``,
official), never a second copy of the weights: when given a ``PeftModel`` that already has an
adapter (iteration ≥ 1), TRL would add a frozen copy of the adapter as the reference; this
trainer removes it again unless ``reference="previous"``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
from accelerate.utils import is_peft_model
from trl.trainer.dpo_trainer import DataCollatorForPreference, DPOTrainer

from sf_train.config import Objective, ScoreDPOConfig
from sf_train.errors import TrainError
from sf_train.pairs import resolve_weight_fn

__all__ = ["SCORE_COLUMNS", "ScoreDPOTrainer", "ScoredPreferenceCollator", "score_weights"]

SCORE_COLUMNS = ("chosen_score", "rejected_score")
"""Dataset columns that carry each pair's scores (floats in [0, 1])."""


@dataclass
class ScoredPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator plus the pair scores.

    Output = TRL's (``input_ids``, ``attention_mask``, ``completion_mask``, the batch being
    [chosen rows; rejected rows]) plus ``chosen_score`` and ``rejected_score``, float32 tensors of
    shape (batch,), when the examples carry them.
    """

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        """TRL's batch for ``examples`` plus ``chosen_score``/``rejected_score`` float32 tensors.

        A score key is added only when the first example carries it.
        """
        output = super().torch_call(examples)
        for key in SCORE_COLUMNS:
            if key in examples[0]:
                output[key] = torch.tensor([float(e[key]) for e in examples], dtype=torch.float32)
        return output


def score_weights(
    chosen_score: torch.Tensor, rejected_score: torch.Tensor, weight_fn: Callable[[Any], Any]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (f(s_w), 1 − f(s_l)), the multipliers of the chosen and rejected log-ratios."""
    return weight_fn(chosen_score), 1.0 - weight_fn(rejected_score)


class ScoreDPOTrainer(DPOTrainer):
    """TRL's `DPOTrainer` with Score-DPO's score weighting (``args.objective == "score-dpo"``).

    With ``args.objective == "dpo"`` it is TRL's DPO unchanged (the score columns are ignored),
    with the same reference handling, so ablations differ only in the loss.

    Args:
        model: A causal LM or a ``PeftModel`` (the usual case: the LoRA adapter is trained and
            disabled for the reference).
        args: A :class:`~sf_train.config.ScoreDPOConfig`; a plain ``DPOConfig`` is also accepted
            and means Score-DPO with f = identity and the official reference.
        train_dataset: Columns ``prompt``, ``chosen``, ``rejected`` (strings) and, for Score-DPO,
            ``chosen_score`` and ``rejected_score`` in [0, 1].
        **kwargs: Everything else `DPOTrainer` accepts (``processing_class``, ``peft_config``, ...).

    Raises:
        TrainError: Score-DPO is selected and a batch arrives without scores.
    """

    _tag_names = ["trl", "dpo", "score-dpo", "sf-train"]
    _name = "Score-DPO"

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: Any = None,
        data_collator: Any = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            args = ScoreDPOConfig()
        objective = getattr(args, "objective", Objective.SCORE_DPO.value)
        if objective not in (Objective.SCORE_DPO, Objective.DPO):
            raise TrainError(f"ScoreDPOTrainer trains 'score-dpo' or 'dpo', not {objective!r}")
        self._use_scores = objective == Objective.SCORE_DPO
        self._weight_fn = resolve_weight_fn(getattr(args, "weight_fn", "identity"))
        reference = getattr(args, "reference", "base")

        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        if (
            data_collator is None
            and tokenizer is not None
            and not hasattr(processing_class, "image_processor")
        ):
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            data_collator = ScoredPreferenceCollator(
                pad_token_id=tokenizer.pad_token_id,
                max_length=args.max_length,
                truncation_mode=args.truncation_mode,
                pad_to_multiple_of=args.pad_to_multiple_of,
            )

        had_ref_adapter = is_peft_model(model) and "ref" in model.peft_config
        super().__init__(
            model,
            ref_model=ref_model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        unwrapped = self.accelerator.unwrap_model(self.model)
        if (
            reference == "base"
            and ref_model is None
            and is_peft_model(unwrapped)
            and "ref" in unwrapped.peft_config
            and not had_ref_adapter
        ):
            # TRL copied the incoming adapter as a frozen "ref" adapter; the official reference is
            # the adapter-disabled base model, which TRL uses when no "ref" adapter exists.
            unwrapped.delete_adapter("ref")
            unwrapped.set_adapter("default")

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self._signature_columns is not None:
            for key in SCORE_COLUMNS:
                if key not in self._signature_columns:
                    self._signature_columns.append(key)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        """TRL's reference log-probs of one padded batch (unweighted; scores are not model inputs)."""
        inputs = {k: v for k, v in inputs.items() if k not in SCORE_COLUMNS}
        return super().compute_ref_log_probs(model, inputs)

    def _log_prob_modules(self) -> list[torch.nn.Module]:
        """The modules whose forward returns the per-token ``log_probs`` that Score-DPO weights."""
        modules = [self.accelerator.unwrap_model(self.model)]
        if self.ref_model is not None:
            modules.append(self.accelerator.unwrap_model(self.ref_model))
        return modules

    @contextlib.contextmanager
    def _scaled_log_probs(self, weights: torch.Tensor) -> Iterator[None]:
        """Multiply row i of every fused forward's ``log_probs`` by ``weights[i]`` while active."""

        def hook(_module: torch.nn.Module, _args: Any, output: Any) -> Any:
            log_probs = getattr(output, "log_probs", None)
            if log_probs is None:
                return output
            if log_probs.size(0) != weights.size(0):
                raise TrainError(
                    f"Score-DPO: forward returned {log_probs.size(0)} rows for {weights.size(0)} weights"
                )
            output.log_probs = log_probs * weights.to(log_probs.device, log_probs.dtype).unsqueeze(1)
            return output

        handles = [m.register_forward_hook(hook) for m in self._log_prob_modules()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        chosen_score = inputs.pop("chosen_score", None)
        rejected_score = inputs.pop("rejected_score", None)
        if not self._use_scores:
            return super()._compute_loss(model, inputs, return_outputs)
        if chosen_score is None or rejected_score is None:
            raise TrainError(
                "Score-DPO needs `chosen_score` and `rejected_score` columns in the dataset "
                "(use objective 'dpo' for unscored pairs)"
            )
        mode = "train" if self.model is not None and self.model.training else "eval"
        # [B, 2] per process: gathering concatenates along dim 0, so every process's pairs count
        pair_scores = torch.stack([chosen_score, rejected_score], dim=1)
        gathered = cast(torch.Tensor, self.accelerator.gather_for_metrics(pair_scores))  # tensor in and out
        self._metrics[mode]["scores/chosen"].append(gathered[:, 0].float().mean().item())
        self._metrics[mode]["scores/rejected"].append(gathered[:, 1].float().mean().item())

        w_chosen, w_rejected = score_weights(chosen_score.float(), rejected_score.float(), self._weight_fn)
        if self.precompute_ref_logps:
            inputs = dict(inputs)
            inputs["ref_chosen_logps"] = inputs["ref_chosen_logps"] * w_chosen.to(
                inputs["ref_chosen_logps"].device
            )
            inputs["ref_rejected_logps"] = inputs["ref_rejected_logps"] * w_rejected.to(
                inputs["ref_rejected_logps"].device
            )
        with self._scaled_log_probs(torch.cat([w_chosen, w_rejected])):
            return super()._compute_loss(model, inputs, return_outputs)
