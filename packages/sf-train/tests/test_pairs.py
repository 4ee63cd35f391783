"""Pair building and sampling as the official evaluate.py does it."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from sf_train.errors import TrainConfigError, TrainError
from sf_train.pairs import ScoredSample, build_pairs, pair_stats, resolve_gap_fn, sample_pairs


def samples(task, scores, failures=None):
    failures = failures or {}
    return [
        ScoredSample(
            task_id=task,
            index=i,
            prompt=f"prompt {task}",
            completion=f"{task}-wf{i}",
            score=s,
            failure=failures.get(i),
        )
        for i, s in enumerate(scores)
    ]


def test_every_unequal_pair_within_a_task_with_the_winner_higher():
    pairs = build_pairs(samples("a", [0.2, 1.0, 0.2, 0.6]) + samples("b", [0.5, 0.5]))
    got = {(p.chosen, p.rejected, p.chosen_score, p.rejected_score) for p in pairs}
    assert got == {
        ("a-wf1", "a-wf0", 1.0, 0.2),
        ("a-wf1", "a-wf2", 1.0, 0.2),
        ("a-wf1", "a-wf3", 1.0, 0.6),
        ("a-wf3", "a-wf0", 0.6, 0.2),
        ("a-wf3", "a-wf2", 0.6, 0.2),
    }
    assert all(p.task_id == "a" and p.prompt == "prompt a" for p in pairs)
    assert len(pairs) == 5  # the equal-score pair (0, 2) and task b give none


def test_failed_workflows_count_as_zero_and_stay_in_the_pool():
    group = samples("t", [0.0, 0.0, 1.0], failures={0: "parse", 1: "timeout"})
    pairs = build_pairs(group)
    assert sorted(p.rejected for p in pairs) == ["t-wf0", "t-wf1"]
    stats = pair_stats(group + samples("u", [0.3, 0.3]))
    assert (
        stats.tasks,
        stats.samples,
        stats.failed_samples,
        stats.tasks_without_pairs,
        stats.pool_pairs,
    ) == (2, 5, 2, 1, 2)
    assert stats.mean_score == pytest.approx(1.6 / 5)


def test_samples_our_failures_left_unscored_are_never_paired_but_counted():
    from dataclasses import replace

    group = samples("t", [0.0, 0.5, 1.0], failures={0: "infra:endpoint: HTTP 500"})
    group[0] = replace(group[0], infra="infra:endpoint: HTTP 500")  # the endpoint failed, not the workflow
    pairs = build_pairs(group)
    assert {(p.chosen_index, p.rejected_index) for p in pairs} == {(2, 1)}
    stats = pair_stats(group)
    assert (stats.samples, stats.infra_failed_samples, stats.failed_samples, stats.pool_pairs) == (3, 1, 0, 1)
    assert stats.mean_score == pytest.approx(0.75)  # over the scored samples only
    assert ScoredSample.from_dict({k: v for k, v in group[1].to_dict().items() if k != "infra"}) == group[1]


@pytest.mark.parametrize("bad", [float("nan"), -0.1, 1.5])
def test_scores_outside_unit_interval_are_errors_not_dropped(bad):
    with pytest.raises(TrainError, match="scores must be in"):
        build_pairs(samples("t", [0.5, bad]))


def test_sampling_follows_the_cubed_gap_with_replacement():
    pool = build_pairs(samples("a", [1.0, 0.5, 0.0]))  # gaps 0.5, 1.0, 0.5
    n = 60_000
    drawn = sample_pairs(pool, n, gap_fn="cube", seed=3)
    assert len(drawn) == n
    counts = Counter((p.chosen_index, p.rejected_index) for p in drawn)
    weights = {(p.chosen_index, p.rejected_index): (p.chosen_score - p.rejected_score) ** 3 for p in pool}
    total = sum(weights.values())
    for key, w in weights.items():
        expected = n * w / total  # 0.1, 0.8, 0.1 of n
        sd = math.sqrt(n * (w / total) * (1 - w / total))
        assert abs(counts[key] - expected) < 5 * sd
    assert counts[(0, 2)] / n == pytest.approx(0.8, abs=0.01)


def test_sampling_is_reproducible_and_seed_dependent():
    pool = build_pairs(samples("a", [1.0, 0.7, 0.4, 0.1]) + samples("b", [0.9, 0.2]))
    first = sample_pairs(pool, 50, seed=7)
    assert first == sample_pairs(pool, 50, seed=7)
    assert first != sample_pairs(pool, 50, seed=8)


def test_gap_functions_and_errors():
    pool = build_pairs(samples("a", [1.0, 0.5, 0.0]))
    uniform = Counter(p.rejected_index for p in sample_pairs(pool, 30_000, gap_fn="uniform", seed=0))
    assert all(
        abs(c / 30_000 - 1 / 3) < 0.02
        for c in Counter(
            (p.chosen_index, p.rejected_index) for p in sample_pairs(pool, 30_000, gap_fn="uniform", seed=0)
        ).values()
    )
    assert uniform
    assert sample_pairs([], 10) == []
    assert resolve_gap_fn("math:hypot")(3, 4) == 5
    with pytest.raises(TrainConfigError, match="unknown function"):
        sample_pairs(pool, 5, gap_fn="nope")
    with pytest.raises(TrainError, match="finite and >= 0"):
        sample_pairs(pool, 5, gap_fn=lambda w, lo: lo - w)
    with pytest.raises(TrainConfigError, match="cannot import"):
        resolve_gap_fn("no_such_module_xyz:f")


def test_samples_round_trip_through_dicts():
    s = samples("t", [0.25], failures={0: "crash"})[0]
    assert ScoredSample.from_dict(s.to_dict()) == s
    p = build_pairs(samples("t", [1.0, 0.0]))[0]
    assert type(p).from_dict(p.to_dict()) == p
