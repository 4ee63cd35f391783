"""Paired statistics of ``sf bench report A B``.

Hand-computed cases, scipy as the reference, and the real CLI on two real runs (canonical
answers vs a file with some wrong ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from sf_bench.cli import main
from sf_bench.compare import EXACT_LIMIT, compare, paired_bootstrap, permutation_p, sign_test_p
from sf_bench.datasets import load


def scores(values: list[float], cost: float = 0.0) -> dict[str, tuple[float, float]]:
    return {f"p{i}": (v, cost) for i, v in enumerate(values)}


def test_hand_computed_case() -> None:
    # d = [0.5, 1.0, -0.25]: the 8 sign patterns give sums 1.75 1.25 0.75 0.25 -0.25 -0.75
    # -1.25 -1.75; observed 1.25 -> P(>=) = 2/8, P(<=) = 7/8 -> p = 2 * 2/8 = 0.5.
    # Sign test: 2 wins, 1 loss -> 2 * P(X <= 1 | n=3) = 2 * 4/8 = 1.0.
    c = compare("gsm8k", scores([0.0, 0.0, 0.5]), scores([0.5, 1.0, 0.25]), labels=("a", "b"))
    assert c.shared == 3 and (c.wins, c.losses, c.ties) == (2, 1, 0)
    assert c.difference == pytest.approx(1.25 / 3)
    assert c.p_permutation == pytest.approx(0.5) and c.permutation_exact
    assert c.p_sign == pytest.approx(1.0)
    assert c.baseline_score == pytest.approx(0.5 / 3) and c.run_score == pytest.approx(1.75 / 3)

    # six wins out of ten, four ties: sign test 2/64, permutation 2/64, interval above 0
    c = compare("gsm8k", scores([0.0] * 6 + [1.0] * 4, 0.01), scores([1.0] * 10, 0.03))
    assert c.difference == pytest.approx(0.6) and (c.wins, c.losses, c.ties) == (6, 0, 4)
    assert c.p_sign == pytest.approx(2 / 64) and c.p_permutation == pytest.approx(2 / 64)
    assert 0 < c.low <= 0.6 <= c.high <= 1.0 and c.significant and c.verdict == "significant"
    assert c.cost_difference == pytest.approx(0.02) and c.run_cost == pytest.approx(0.3)

    # as many losses as wins: the interval contains 0
    c = compare("gsm8k", scores([1, 0, 1, 0, 1, 1]), scores([0, 1, 0, 1, 1, 1]))
    assert c.difference == 0.0 and c.low < 0 < c.high and c.p_sign == 1.0 and c.p_permutation == 1.0
    assert not c.significant and c.verdict == "not significant"


def test_unshared_problems_metrics_and_empty_runs() -> None:
    c = compare("drop", {"a": (1.0, 0.0), "b": (0.5, 0.0)}, {"b": (1.0, 0.0), "c": (0.0, 0.0)})
    assert (c.shared, c.only_baseline, c.only_run) == (1, 1, 1) and c.verdict == "too few problems"
    c = compare("drop", scores([1.0] * 5), scores([0.0] * 5), metrics=("official", "llm-judge"))
    assert (
        not c.significant and c.verdict == "not comparable" and c.notes == ("metric official vs llm-judge",)
    )
    c = compare("drop", scores([1.0]), {})
    assert c.shared == 0 and c.verdict == "no shared problems" and c.to_json()["difference"]["value"] is None


@pytest.mark.parametrize("wins_losses", [(0, 0), (1, 0), (3, 1), (7, 2), (10, 10), (2, 19), (40, 25)])
def test_sign_test_matches_scipy_binomtest(wins_losses: tuple[int, int]) -> None:
    wins, losses = wins_losses
    expected = stats.binomtest(wins, wins + losses, 0.5).pvalue if wins + losses else 1.0
    assert sign_test_p(wins, losses) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_exact_permutation_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, EXACT_LIMIT + 1))
    if seed % 2:
        d = rng.integers(-1, 2, size=n).astype(float)  # 0/1 scores: differences in {-1, 0, 1}
    else:
        d = np.round(rng.uniform(-1, 1, size=n), 2)  # F1-like fractions
    ref = stats.permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative="two-sided",
    )
    p, exact = permutation_p(list(d))
    assert exact and p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_random_permutation_and_bootstrap_agree_with_scipy() -> None:
    rng = np.random.default_rng(7)
    d = (rng.random(200) < 0.55).astype(float) - (rng.random(200) < 0.45).astype(float)
    p, exact = permutation_p(list(d))
    ref = stats.permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        n_resamples=20_000,
        alternative="two-sided",
        rng=1,
    )
    assert not exact and abs(p - ref.pvalue) < 0.02
    mean, low, high = paired_bootstrap(list(d), resamples=20_000)
    boot = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000, rng=1)
    assert mean == pytest.approx(float(np.mean(d)))
    assert low == pytest.approx(boot.confidence_interval.low, abs=0.01)
    assert high == pytest.approx(boot.confidence_interval.high, abs=0.01)


# ---------------------------------------------------------------------------------- the CLI
@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """``sf bench run gsm8k`` twice on 10 problems: canonical, and a file answering 3 wrong."""
    problems = load("gsm8k", "validate", limit=10)
    wrong = [p.id for p in problems[:3]]
    answers = tmp_path / "answers.jsonl"
    answers.write_text(
        "".join(
            json.dumps({"id": p.id, "answer": "-123456" if p.id in wrong else p.answers[0], "cost": 0.5})
            + "\n"
            for p in problems
        )
    )
    a, b = tmp_path / "canonical", tmp_path / "mine"
    common = ["run", "gsm8k", "--split", "validate", "--limit", "10", "-q"]
    assert main([*common, "--solver", "canonical", "--out", str(a)]) == 0
    assert main([*common, "--solver", f"file:{answers}", "--out", str(b)]) == 0
    return a, b, wrong


def test_report_prints_and_writes_paired_statistics(
    two_runs: tuple[Path, Path, list[str]], tmp_path: Path, capsys: Any
) -> None:
    a, b, wrong = two_runs
    capsys.readouterr()
    assert main(["report", str(a), str(b), "--no-plot", "--stats-json", "-"]) == 0
    out = capsys.readouterr().out
    (row,) = json.loads(out)  # stdout is JSON only
    assert row["dataset"] == "gsm8k" and row["baseline"] == str(a) and row["run"] == str(b)
    assert row["shared"] == 10 and (row["wins"], row["losses"], row["ties"]) == (0, 3, 7)
    assert row["difference"]["value"] == pytest.approx(-0.3)
    assert row["p_sign"] == pytest.approx(0.25)  # 2 * (1/2)^3
    assert row["p_permutation"] == pytest.approx(0.25) and row["permutation_exact"]
    assert row["cost_difference"] == pytest.approx(0.5) and row["run_cost"] == pytest.approx(5.0)
    assert row["difference"]["low"] < 0 and row["verdict"] in ("significant", "not significant")
    assert row["significant"] == (row["difference"]["high"] < 0)

    assert main(["report", str(a), str(b), "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "paired: each run minus" in text and "0/3/7" in text and "-0.300 [" in text
    assert "+0.5000" in text and row["verdict"] in text

    stats_file = tmp_path / "stats.json"
    assert (
        main(["report", str(a), str(b), "--no-plot", "--baseline", str(b), "--stats-json", str(stats_file)])
        == 0
    )
    (flipped,) = json.loads(stats_file.read_text())
    assert flipped["baseline"] == str(b) and flipped["difference"]["value"] == pytest.approx(0.3)


def test_report_option_errors(two_runs: tuple[Path, Path, list[str]], tmp_path: Path, capsys: Any) -> None:
    a, b, _ = two_runs
    capsys.readouterr()
    assert main(["report", str(a), "--stats-json", "-"]) == 2
    assert "needs two or more DIRs" in capsys.readouterr().err
    assert main(["report", str(a), str(b), "--baseline", str(tmp_path), "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --baseline") and "Traceback" not in err


def test_differences_between_the_runs_are_noted(
    two_runs: tuple[Path, Path, list[str]], tmp_path: Path, capsys: Any
) -> None:
    a, _, _ = two_runs
    c = tmp_path / "k2"
    assert (
        main(
            ["run", "gsm8k", "--split", "validate", "--limit", "4", "--solver", "canonical", "--k", "2"]
            + ["--out", str(c), "-q"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["report", str(a), str(c), "--no-plot", "--stats-json", "-"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["shared"], row["only_baseline"], row["only_run"]) == (4, 6, 0)
    assert row["notes"] == ["k x repeats differ (1x1 vs 2x1)"] and row["verdict"] == "not significant"
