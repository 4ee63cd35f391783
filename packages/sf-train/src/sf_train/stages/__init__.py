"""The loop's stages, one module each, in the paper's order; :mod:`sf_train.loop` sequences them.

==============================  ==============================================================
module                          stage: reads → writes (the hand-off it returns)
==============================  ==============================================================
:mod:`~.handoff`                the hand-off types, one per set of files a stage writes
:mod:`~.context`                :class:`StageContext`: settings, run directory, reporter
:mod:`~.generate`               problems + adapter → ``samples.jsonl`` (:class:`GeneratedWorkflows`)
:mod:`~.score`                  samples → ``bench/``, ``scores.jsonl`` (:class:`ScoredWorkflows`)
:mod:`~.pairs`                  scores → ``pairs.jsonl``, ``pair_stats.json`` (:class:`Pairs`)
:mod:`~.train`                  pairs + scores + previous adapter → ``adapter/``, ``train.json``
                                (:class:`Adapter`)
:mod:`~.evaluate`               generate + score into ``<name>/`` → ``metrics.json``
                                (:class:`Evaluation`)
==============================  ==============================================================

Every stage skips what its files already hold (that is the loop's resume) and never branches on
where it runs: the sandboxes a scoring stage uses and the launcher a training stage hands its
work to are arguments (:mod:`sf_train.runners`).
"""

from sf_train.stages.context import Reporter, StageContext
from sf_train.stages.handoff import Adapter, Evaluation, GeneratedWorkflows, Pairs, ScoredWorkflows

__all__ = [
    "Adapter",
    "Evaluation",
    "GeneratedWorkflows",
    "Pairs",
    "Reporter",
    "ScoredWorkflows",
    "StageContext",
]
