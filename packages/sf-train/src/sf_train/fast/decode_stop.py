"""Host-side stop checks of the decoder: EOS everywhere, and the stop string with the exact cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["check_stop"]


def check_stop(
    lay: Any,
    eos_token_id: int | None,
    produced: int,
    checked: int,
    overlap: int,
    stop: str | None,
    decode: Callable[[list[int]], str] | None,
    stopped: dict[int, int],
) -> bool:
    """Check the rows after ``produced`` tokens; True when every row has finished.

    A row whose text (from ``checked - overlap`` on) holds ``stop`` is cut right after the first token
    that completes it (``stopped[row] = tokens kept``, as transformers' ``stop_strings`` does) and is
    marked done on the device.
    """
    done = lay.done.cpu()
    if stop and decode is not None:
        tokens = lay.out[:, :produced].cpu()
        for r in range(lay.rows):
            if r in stopped:
                continue
            row = tokens[r].tolist()
            if eos_token_id is not None and eos_token_id in row:
                row = row[: row.index(eos_token_id)]
            lo = max(0, checked - overlap)
            if stop not in decode(row[lo:]):
                continue
            for end in range(max(lo + 1, checked), len(row) + 1):  # first token completing the stop
                if stop in decode(row[lo:end]):
                    stopped[r] = end
                    break
        if stopped:
            idx = torch.tensor(sorted(stopped), device=lay.done.device)
            lay.done.index_fill_(0, idx, True)
            done[idx.cpu()] = True
    return bool(done.all())
