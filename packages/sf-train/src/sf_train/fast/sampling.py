"""The decoder's next-token sampling, as transformers samples: temperature, then top-p.

Top-p keeps the smallest set of most likely tokens whose mass reaches ``top_p`` (transformers'
``TopPLogitsWarper``); temperature 0 is greedy. Four ways, chosen by :func:`resolve_method`:

* ``"split"``: :func:`sf_train.fast.sampling_kernels.sample_rows`, the nucleus cut and the draw
  split over the vocabulary (about 1,024 programs), reading the LM head's logits as they are;
  Triton's Philox draws, seeded per chunk of rows from torch's generator.
* ``"single"``: the one-program-per-row bisection cut
  (:func:`sf_train.fast.sampling_kernels.top_p_threshold`), then torch's softmax and exponential race.
* ``"sort"``: a sort of the vocabulary (transformers' own way), then the race.
* ``"plain"`` (top-p off) and ``"greedy"`` (temperature 0; the arg-max).

The kernels' cut is checked once per device against the sort on tie-free random logits before
``"auto"`` picks them (tokens tied at the cut are all kept, where the sort keeps an arbitrary
subset of them).
"""

from __future__ import annotations

import torch

from sf_train.fast.decode_support import triton_ok

__all__ = ["resolve_method", "sample", "sort_top_p_keep"]

_CHECKS: dict[tuple[str, str], bool] = {}


def sort_top_p_keep(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean mask of the top-p nucleus of each row, by a sort (the reference)."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, -1)
    keep = (probs.cumsum(-1) - probs) < top_p
    return torch.zeros_like(keep).scatter_(-1, order, keep)


def _kernel_cut(method: str, logits: torch.Tensor, top_p: float) -> torch.Tensor:
    if method == "split":
        from sf_train.fast.sampling_kernels import top_p_cut

        return top_p_cut(logits, top_p)
    from sf_train.fast.sampling_kernels import top_p_threshold

    return top_p_threshold(logits, top_p)


def kernel_works(method: str, device: torch.device) -> bool:
    """True when ``method``'s (``"split"`` or ``"single"``) Triton cut keeps exactly the sort's tokens.

    Checked on random tie-free logits on ``device``, once per device and method.
    """
    key = (method, str(device))
    if key not in _CHECKS:
        try:
            gen = torch.Generator(device=device).manual_seed(0)
            ok = True
            for rows, scale, top_p in ((8, 1.0, 0.95), (8, 6.0, 0.9), (8, 30.0, 0.95), (8, 0.05, 0.5)):
                logits = torch.randn(rows, 50_000, device=device, generator=gen) * scale
                got = logits >= _kernel_cut(method, logits, top_p)[:, None]
                ok = ok and bool(torch.equal(got, sort_top_p_keep(logits, top_p)))
            _CHECKS[key] = ok
        except Exception:  # no Triton build for this device: keep the sort
            _CHECKS[key] = False
    return _CHECKS[key]


def resolve_method(top_p_kernel: bool | str, device: torch.device, temperature: float, top_p: float) -> str:
    """The way :func:`sample` draws for these settings (see the module docstring).

    Args:
        top_p_kernel: ``"auto"`` (on CUDA: ``"split"`` once it passes its check, else ``"single"``
            once that does, else the sort), True or ``"split"`` (forced, also on CPU through
            Triton's interpreter), ``"single"`` (forced), False (the sort).
        device: Where the logits live.
        temperature: The sampling temperature.
        top_p: The nucleus mass.

    Raises:
        ValueError: an unknown ``top_p_kernel``.
    """
    if top_p_kernel not in (True, False, "auto", "split", "single"):
        raise ValueError(
            f"top_p_kernel must be True, False, 'auto', 'split' or 'single' (got {top_p_kernel!r})"
        )
    if temperature <= 0:
        return "greedy"
    plain = "plain" if top_p >= 1.0 else "sort"
    if top_p_kernel is False or not triton_ok():
        return plain
    if top_p_kernel in (True, "split"):
        return "split"
    if top_p_kernel == "single":
        return "single" if top_p < 1.0 else plain
    if device.type != "cuda":
        return plain
    if kernel_works("split", device):
        return "split"
    if top_p < 1.0 and kernel_works("single", device):
        return "single"
    return plain


def sample(
    logits: torch.Tensor,
    method: str,
    temperature: float,
    top_p: float,
    *,
    seed: torch.Tensor | None = None,
    slot: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token id per row of ``logits`` [R, V] (any float dtype) by ``method``.

    Args:
        logits: The LM head's output for the rows' last positions.
        method: From :func:`resolve_method`.
        temperature: The sampling temperature.
        top_p: The nucleus mass.
        seed: For ``"split"``: the [1] int64 device seed
            (:func:`sf_train.fast.sampling_kernels.sample_rows`); other methods use torch's RNG.
        slot: For ``"split"``: the [1] int64 device step counter
            (:func:`sf_train.fast.sampling_kernels.sample_rows`); other methods use torch's RNG.

    Returns:
        [R] int64 token ids.
    """
    if method == "greedy":
        return logits.argmax(-1)
    if method == "split":
        from sf_train.fast.sampling_kernels import sample_rows

        if seed is None:
            seed = torch.randint(0, 2**62, (1,)).to(logits.device)
        return sample_rows(logits, temperature=temperature, top_p=top_p, seed=seed, slot=slot)
    logits = logits.float() / temperature
    if method == "plain":
        probs = torch.softmax(logits, -1)
        return (probs / torch.empty_like(probs).exponential_()).argmax(-1)
    if method == "single":
        from sf_train.fast.sampling_kernels import top_p_threshold

        cut = top_p_threshold(logits, top_p)
        probs = torch.softmax(logits, -1).masked_fill_(logits < cut[:, None], 0.0)
        return (probs / torch.empty_like(probs).exponential_()).argmax(-1)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, -1)
    before = probs.cumsum(-1) - probs  # mass strictly more likely than each token
    probs = probs.masked_fill(before >= top_p, 0.0)
    choice = (probs / torch.empty_like(probs).exponential_()).argmax(-1, keepdim=True)
    return order.gather(-1, choice)[:, 0]
