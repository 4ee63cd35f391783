"""sf_sandbox.progress.ProgressBar: sparse plain lines off a terminal, a live bar on one.

Nothing when quiet; Sandbox.run_many(progress=...) keeps its callback contract.
"""

from __future__ import annotations

import io

from sf_sandbox.progress import ProgressBar


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_every_tenth_and_at_the_end() -> None:
    out = io.StringIO()
    with ProgressBar("sandbox", 100, unit="jobs", stream=out, interval=3600) as bar:
        for done in range(1, 101):
            bar.update(done, status="ok")
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 10, 20, ..., 100, and the closing line
    assert lines[0].startswith("sandbox: 10/100 jobs  ok  ") and lines[0].endswith("s")
    assert lines[-1].startswith("sandbox: 100/100 jobs  ok  ")


def test_the_interval_adds_a_line_when_work_is_slow() -> None:
    out = io.StringIO()
    bar = ProgressBar("gen", 1000, stream=out, interval=0.0)
    bar.update(1)
    bar.update(2)
    bar.close()
    bar.close()  # once only
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == ["gen: 1/1000", "gen: 2/1000", "gen: 2/1000"]


def test_quiet_draws_nothing_and_unknown_total_is_a_question_mark() -> None:
    out = Tty()
    with ProgressBar("x", 10, stream=out, quiet=True) as bar:
        bar.update(5)
        bar.log("note")
    assert out.getvalue() == ""
    plain = io.StringIO()
    with ProgressBar("x", 0, stream=plain) as bar:
        bar.advance(3)
    assert plain.getvalue().startswith("x: 3/? ")


def test_a_terminal_gets_a_live_rich_bar() -> None:
    out = Tty()
    with ProgressBar("gsm8k", 4, unit="samples", stream=out) as bar:
        assert bar.tty
        bar.log("gsm8k: resuming, 1/4 already done")
        for done in range(1, 5):
            bar.update(done, status="score 1.000")
    text = out.getvalue()
    assert "\x1b[" in text  # drawn in place with terminal control codes
    assert "4/4" in text and "score 1.000" in text and "resuming" in text


def test_run_many_progress_callback_and_bar(monkeypatch) -> None:
    import sys

    from sf_sandbox.pool import progress_reporter as _progress

    calls: list[tuple[int, int]] = []
    report = _progress(lambda done, total: calls.append((done, total)), 3)
    for done in (1, 2, 3):
        report(done)
    report(3, final=True)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    show = _progress(True, 3)
    for done in (1, 2, 3):
        show(done)
    show(3, final=True)
    assert err.getvalue().splitlines()[-1].startswith("sandbox: 3/3 jobs")
