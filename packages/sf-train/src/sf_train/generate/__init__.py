"""Workflow generation backends behind one interface (see :mod:`sf_train.generate.base`).

``hf`` (transformers, always available) and ``vllm`` (``sf-train[vllm]``, imported lazily).
Use :func:`make_generator` to build the one a config selects.
"""

from __future__ import annotations

from sf_train.generate.base import BaseWorkflowGenerator, GenerationParams, cut_at_stop

__all__ = ["BaseWorkflowGenerator", "GenerationParams", "cut_at_stop"]
