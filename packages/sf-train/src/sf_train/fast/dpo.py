"""`FastScoreDPOTrainer`: the same Score-DPO loss as `ScoreDPOTrainer`, computed with less work.

What changes (the loss code does not: it is TRL's ``_compute_loss`` with sf-train's score
weighting, called with a different forward):

* **Reference log-probs once, not every step.** At construction the adapter-disabled base (or
  the ``"ref"`` adapter for ``reference="previous"``) scores every pair of the train (and eval)
  dataset under ``no_grad`` in batches of ``precompute_ref_batch_size`` pairs (default 8), and
  the sums become the ``ref_chosen_logps`` / ``ref_rejected_logps`` columns TRL reads. That
  removes a forward from every step; the pass is timed in :attr:`FastScoreDPOTrainer.ref_seconds`
  (the benchmark adds it back, per pair, to the step time).
* **One sequence per pair.** :class:`SharedPrefixForward` packs ``prompt+chosen | rejected``
  (:mod:`sf_train.fast.packing`), so the prompt and any shared completion prefix go through the
  model once. On CUDA the pairs of a micro-batch lie back to back in one padding-free row and
  each layer's attention is one variable-length flash-attention call
  (:mod:`sf_train.fast.attention`, checked against a reference on first use); elsewhere one
  padded row per pair with two causal sdpa calls, not one masked ``N²`` kernel.
* **Autocast as the stock path has it.** The wrapped model's forward (where accelerate installs
  its autocast) is bypassed, so the trainer enters ``accelerator.autocast()`` itself; LoRA
  layers keep their bf16 inputs instead of copying them to float32 and back.
* **Only completion positions reach the LM head**, through TRL's own chunked log-prob kernel
  (``trl.kernels.ChunkedLogProbFunction``): the ``[tokens, 128k]`` fp32 logits are never built.
* **Fused kernels** on CUDA with Triton (checked against the eager modules at first use,
  :func:`fused_kernels_work`): RMSNorm and SwiGLU with their own backward.
* **Fused LoRA projections** (:mod:`sf_train.fast.lora`): each LoRA linear layer is one autograd
  node that accumulates ``scaling · (x Aᵀ) Bᵀ`` into the base GEMM's output in place (and the
  LoRA input gradient into the base one), instead of PEFT's separate scale and add passes over
  every ``[tokens, out]`` output (``fused_lora=False`` keeps PEFT's forward).
* **Less kept for backward**: the MLP's ``silu(g)·u`` is recomputed in backward
  (:mod:`sf_train.fast.mlp`), the widest activation of the layer.
* **No gradient checkpointing**: an 8B-shaped model with 4 pairs of 512+384+384 tokens per
  forward fits beside its weights in 40 GiB (33 GiB measured on an H100; 2 pairs: 25 GiB).

Equivalence: at s_w = 1, s_l = 0 the loss and every LoRA gradient equal TRL's stock
`DPOTrainer` on the same batch to float tolerance (CPU tests; float32 check on the H100 in
``benchmarks/train_throughput.py``), and otherwise Score-DPO's formula.

Limits: one process (no DDP/FSDP; use `ScoreDPOTrainer` under ``accelerate launch``), a LoRA
(PEFT) model, no ``ref_model`` argument, ``sdpa`` or ``eager`` attention, causal LMs whose LM
head is a plain linear layer with no logit scaling or soft-capping (Llama, Mistral, Qwen2/3).
TRL's loss types, ``ld_alpha`` and ``use_weighting`` work unchanged (they read the same
per-token fields in the same layout).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from accelerate.utils import is_peft_model
from trl.kernels import ChunkedLogProbFunction
from trl.trainer.utils import FusedCausalLMOutput

from sf_train.errors import TrainConfigError, TrainError
from sf_train.fast._model import causal_lm
from sf_train.fast.attention import (
    flash_varlen_attention,
    reference_varlen_attention,
    split_attention,
    varlen_kernel_works,
)
from sf_train.fast.fused_modules import classify_modules, fused_kernels_work, patched_modules
from sf_train.fast.packing import PackedPairs, pack_pairs, varlen_layout
from sf_train.trainer import ScoreDPOTrainer

__all__ = ["FastScoreDPOTrainer", "SharedPrefixForward"]

_CHUNK = 32768  # vocabulary tile of the chunked log-prob kernel (TRL's own value)
_ALL_OUTPUTS = ("log_probs", "entropy", "mean_logits", "is_top1")
_SCALED_HEAD_FIELDS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def check_supported(model: Any) -> None:
    """Raise :class:`~sf_train.errors.TrainConfigError` when the shared-prefix forward cannot run it."""
    lm = causal_lm(model)
    config = lm.config.get_text_config()
    impl = getattr(lm.config, "_attn_implementation", "sdpa")
    if impl not in ("sdpa", "eager"):
        raise TrainConfigError(
            f"the fast Score-DPO path needs attn_implementation 'sdpa' or 'eager' (got {impl!r}); "
            "load the model with attn_implementation='sdpa' or use ScoreDPOTrainer"
        )
    for name in _SCALED_HEAD_FIELDS:
        value = getattr(config, name, None)
        if value not in (None, 1.0):
            raise TrainConfigError(
                f"the fast Score-DPO path supports LM heads without logit scaling; {type(lm).__name__} sets "
                f"{name}={value!r}: use ScoreDPOTrainer"
            )
    if getattr(lm, "get_output_embeddings", lambda: None)() is None:
        raise TrainConfigError(f"{type(lm).__name__} has no output embedding (LM head): use ScoreDPOTrainer")


class SharedPrefixForward(torch.nn.Module):
    """Calls a causal LM the way TRL's fused LM head does, but on shared-prefix packed pairs.

    ``forward(input_ids, attention_mask, labels=..., fused_lm_head=True)`` takes TRL's
    ``[chosen; rejected]`` batch and returns a ``FusedCausalLMOutput`` in TRL's ``[2B, L-1]``
    layout (zeros where the label is -100), so TRL's loss and metrics code runs unchanged.
    Without ``fused_lm_head`` it calls the wrapped model as it is.

    Attention goes through :func:`shared_prefix_attention` (sdpa models) and, on CUDA with Triton,
    the model's RMSNorms and SwiGLU activations through fused kernels with their own backward
    (:func:`fused_kernels_work`).

    Attributes:
        target: The model (or DDP/PEFT wrapper) called; set per call by the trainer.
        outputs: Per-token fields to compute (``log_probs`` always).
        fused: Use the Triton RMSNorm/SwiGLU (None: decide on the first call).
        last_packed: The most recent packing (for inspection and tests).
    """

    target: Any  # plain attributes (set with object.__setattr__), not registered submodules
    _modules_of: Any
    _module_lists: tuple[list[Any], list[Any], list[Any]]

    def __init__(
        self,
        target: Any = None,
        outputs: tuple[str, ...] = _ALL_OUTPUTS,
        fused: bool | None = None,
        varlen: bool | None = None,
        recompute_mlp: bool | None = None,
        fused_lora: bool = True,
    ) -> None:
        super().__init__()
        object.__setattr__(self, "target", target)  # not a submodule: no second parameter registration
        self.outputs = outputs
        self.fused = fused
        self.varlen = varlen
        self.recompute_mlp = recompute_mlp
        self.fused_lora = fused_lora
        self.last_packed: PackedPairs | None = None
        object.__setattr__(self, "_modules_of", None)
        object.__setattr__(self, "_module_lists", ([], [], []))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        labels: torch.Tensor | None = None,
        fused_lm_head: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Run TRL's ``[chosen; rejected]`` batch as shared-prefix packed pairs (``fused_lm_head``).

        Without ``fused_lm_head``: the wrapped model's own output for these arguments (``kwargs``
        passed through). With it: the pairs are packed (kept in ``last_packed``) and a
        ``FusedCausalLMOutput`` is returned in TRL's ``[2B, L-1]`` layout (zeros where the label is
        -100): ``loss`` (mean negative log-probability over the label tokens), ``log_probs``, the other
        per-token fields of ``outputs`` (None when not asked for) and ``label_mask``.

        Raises:
            TrainError: ``fused_lm_head`` without ``labels`` or without a 2D ``attention_mask``.
        """
        if not fused_lm_head:
            return self.target(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        if labels is None or attention_mask is None:
            raise TrainError(
                "SharedPrefixForward needs labels and a 2D attention_mask (TRL's preference batch)"
            )
        if attention_mask.dim() != 2:
            raise TrainError("SharedPrefixForward builds its own 4D mask; pass TRL's 2D attention_mask")
        lm = causal_lm(self.target)
        packed = pack_pairs(input_ids, attention_mask, labels)
        self.last_packed = packed
        impl = getattr(lm.config, "_attn_implementation", "sdpa")
        device = input_ids.device
        if self.fused is None:
            self.fused = fused_kernels_work(device)
        if self.varlen is None:
            self.varlen = impl == "sdpa" and varlen_kernel_works(device)
        if self.recompute_mlp is None:
            self.recompute_mlp = self.fused
        if self._modules_of is not lm:
            object.__setattr__(self, "_module_lists", classify_modules(lm))
            object.__setattr__(self, "_modules_of", lm)
        backbone_kwargs = {k: v for k, v in kwargs.items() if k in ("output_router_logits",)}
        if self.varlen and impl == "sdpa":
            layout = varlen_layout(packed)
            call = dict(
                input_ids=layout.input_ids,
                attention_mask=None,
                position_ids=layout.position_ids,
                sf_varlen=(
                    layout,
                    flash_varlen_attention if device.type == "cuda" else reference_varlen_attention,
                ),
            )
        else:
            mask = packed.attention_mask()
            if impl == "eager":
                mask = torch.zeros(mask.shape, dtype=lm.dtype, device=mask.device).masked_fill(
                    ~mask, torch.finfo(lm.dtype).min
                )
            layout = None
            call = dict(
                input_ids=packed.input_ids,
                attention_mask=mask,
                position_ids=packed.position_ids,
                sf_segments=packed.segments if impl == "sdpa" else None,
            )
        keep_dtype = torch.is_autocast_enabled(device.type)
        with (
            split_attention(lm, impl == "sdpa"),
            patched_modules(self._module_lists, self.fused, self.recompute_mlp, keep_dtype, self.fused_lora),
        ):
            hidden = lm.base_model(use_cache=False, **call, **backbone_kwargs).last_hidden_state
        if layout is not None:
            selected = hidden[0, layout.src]
        else:
            selected = hidden[packed.src_row, packed.src_pos]
        head = lm.get_output_embeddings()
        selected = selected.to(head.weight.device)
        per_token = ChunkedLogProbFunction.apply(
            selected,
            head.weight,
            head.bias,
            packed.targets.to(head.weight.device),
            1.0,
            _CHUNK,
            None,
            1.0,
            self.outputs,
        )
        label_mask = packed.label_mask.to(head.weight.device)
        fields = [
            None if x is None else x.new_zeros(label_mask.shape).masked_scatter(label_mask, x)
            for x in per_token
        ]
        log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = fields
        assert log_probs is not None  # always computed; the others only when asked for
        loss = -log_probs.sum() / label_mask.sum().clamp(min=1)
        return FusedCausalLMOutput(
            loss=loss,
            log_probs=log_probs,
            entropy=entropy,
            log_sum_sq_probs=log_sum_sq_probs,
            mean_logits=mean_logits,
            is_top1=is_top1,
            label_mask=label_mask,
        )


class FastScoreDPOTrainer(ScoreDPOTrainer):
    """`ScoreDPOTrainer` with precomputed reference log-probs and shared-prefix packed pairs.

    Same arguments as :class:`~sf_train.trainer.ScoreDPOTrainer` (``more``: the rest of them, in its
    order), plus three keyword-only switches: ``varlen_attention`` (one padding-free row per
    micro-batch; None = on CUDA), ``recompute_mlp`` (recompute SwiGLU in backward; None = when
    the fused kernels run) and ``fused_lora`` (one node per LoRA linear layer). See the module
    docstring for what is faster and the limits. ``args.precompute_ref_log_probs`` is implied
    (TRL's own precompute, which hashes every weight of the model, is not used).

    Attributes:
        ref_seconds: Wall-clock seconds spent computing reference log-probs (all datasets).
        ref_pairs: Pairs scored by the reference pass.

    Raises:
        TrainConfigError: a ``ref_model`` is given, the model is not a LoRA/PEFT model (and no
            ``peft_config``), more than one process, or an unsupported model (see
            :func:`check_supported`).
    """

    _name = "Score-DPO (fast)"

    def __init__(
        self,
        model: Any,
        ref_model: Any = None,
        args: Any = None,
        *more: Any,
        varlen_attention: bool | None = None,
        recompute_mlp: bool | None = None,
        fused_lora: bool = True,
        **kwargs: Any,
    ) -> None:
        if ref_model is not None:
            raise TrainConfigError(
                "FastScoreDPOTrainer takes no ref_model: the reference is the adapter-disabled base "
                "(or the frozen 'ref' adapter for reference='previous')"
            )
        if not is_peft_model(model) and kwargs.get("peft_config") is None:
            raise TrainConfigError(
                "FastScoreDPOTrainer trains a LoRA adapter: pass a PeftModel or a peft_config"
            )
        if args is not None:
            args = copy.copy(args)
            self._ref_batch_size = args.precompute_ref_batch_size or 8
            args.precompute_ref_log_probs = False  # ours below; TRL's would hash all 8B weights first
        else:
            self._ref_batch_size = 8
        self._forward = SharedPrefixForward(
            varlen=varlen_attention, recompute_mlp=recompute_mlp, fused_lora=fused_lora
        )
        self._train_outputs = _ALL_OUTPUTS
        self.ref_seconds = 0.0
        self.ref_pairs = 0
        super().__init__(model, None, args, *more, **kwargs)  # ScoreDPOTrainer's arguments, passed on
        if self.accelerator.num_processes > 1:
            raise TrainConfigError(
                "FastScoreDPOTrainer runs in one process; under accelerate launch use ScoreDPOTrainer"
            )
        check_supported(self.model)
        if self.use_weighting:  # WPO weights read log(sum p²) per token
            self._forward.outputs = self._train_outputs = (*_ALL_OUTPUTS, "log_sum_sq_probs")
        self.train_dataset = self.precompute_reference(self.train_dataset)
        if isinstance(self.eval_dataset, dict):
            self.eval_dataset = {k: self.precompute_reference(v) for k, v in self.eval_dataset.items()}
        elif self.eval_dataset is not None:
            self.eval_dataset = self.precompute_reference(self.eval_dataset)
        self.precompute_ref_logps = True

    def _bind(self, model: Any) -> SharedPrefixForward:
        object.__setattr__(self._forward, "target", model)
        return self._forward

    def precompute_reference(self, dataset: Any) -> Any:
        """Return ``dataset`` with ``ref_chosen_logps`` / ``ref_rejected_logps`` columns (replaced).

        Scores every pair once with the reference (adapter disabled, or the ``"ref"`` adapter), under
        ``no_grad``, ``precompute_ref_batch_size`` pairs per forward.
        """
        from torch.utils.data import DataLoader

        for column in ("ref_chosen_logps", "ref_rejected_logps"):
            if column in dataset.column_names:
                dataset = dataset.remove_columns(column)
        loader = DataLoader(
            dataset, batch_size=self._ref_batch_size, shuffle=False, collate_fn=self.data_collator
        )
        device = self.accelerator.device
        chosen: list[torch.Tensor] = []
        rejected: list[torch.Tensor] = []
        model = self.model
        assert model is not None  # set by the constructor
        was_training = model.training
        model.eval()
        start = time.perf_counter()
        try:
            for batch in loader:
                batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                c, r = self.compute_ref_log_probs(model, batch)
                chosen.append(c.float().cpu())
                rejected.append(r.float().cpu())
        finally:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.ref_seconds += time.perf_counter() - start
            model.train(was_training)
        self.ref_pairs += len(dataset)
        chosen_all = torch.cat(chosen).tolist() if chosen else []
        rejected_all = torch.cat(rejected).tolist() if rejected else []
        dataset = dataset.add_column("ref_chosen_logps", chosen_all)
        return dataset.add_column("ref_rejected_logps", rejected_all)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        """Reference log-probs of one batch through the shared-prefix forward (log-probs only)."""
        wrapper = self._bind(model)
        wrapper.outputs = ("log_probs",)
        try:
            with self.accelerator.autocast():
                return super().compute_ref_log_probs(wrapper, inputs)
        finally:
            wrapper.outputs = self._train_outputs

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        if "ref_chosen_logps" not in inputs:
            raise TrainError("FastScoreDPOTrainer: batch without precomputed reference log-probs")
        # The wrapped model's forward (where accelerate puts its autocast) is not called: autocast here.
        with self.accelerator.autocast():
            return super()._compute_loss(self._bind(model), inputs, return_outputs)

    def _log_prob_modules(self) -> list[torch.nn.Module]:
        """Score weighting hooks the shared-prefix forward (the wrapped model's hooks do not fire)."""
        return [self._forward]
