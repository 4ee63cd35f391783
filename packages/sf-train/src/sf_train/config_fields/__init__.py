"""The sections of :class:`~sf_train.config.ScoreDPOConfig`, one dataclass mixin per module.

``ScoreDPOConfig`` inherits them in this order after TRL's ``DPOConfig`` fields, so its fields,
flags and YAML keys keep one order: :mod:`~.loop`, :mod:`~.objective`, :mod:`~.model`,
:mod:`~.generation` (sampling, prompts and filters, vLLM), :mod:`~.execution` (executor and
sandbox), :mod:`~.scale_out` (Ray). Validation and the profile defaults stay in
:mod:`sf_train.config`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FROM_PROFILE", "help_text"]

FROM_PROFILE: Any = None
"""Default of a profile-governed number field (``iterations``, ``num_pairs``, ...).

It is None until :class:`~sf_train.config.ScoreDPOConfig` fills the field from its profile at
construction, so the field is annotated with the type of the filled value (``int``, ``float``).
"""


def help_text(text: str) -> dict[str, Any]:
    """A field's ``metadata``: the ``help`` TRL's parser shows for its flag."""
    return {"help": text}
