"""sf_train.progress: plain lines without control codes off a terminal, nothing when quiet."""

import io
from types import SimpleNamespace

from sf_train.progress import ScoringBar, quiet_reporter, stderr_reporter, step_bar, task_bar


def test_reporter_writes_timestamped_plain_lines():
    out = io.StringIO()
    stderr_reporter(out)("iter-0: done")
    line = out.getvalue()
    assert line.startswith("[sf-train ") and line.endswith("] iter-0: done\n")
    assert quiet_reporter("anything") is None


def test_task_bar_off_a_terminal_is_plain_lines(capsys):
    with task_bar("iter-0 generation", 4, unit="tasks") as bar:
        for done in range(1, 5):
            bar.update(done)
    err = capsys.readouterr().err
    assert "iter-0 generation: 4/4 tasks" in err
    assert "\x1b" not in err and "\r" not in err


def test_quiet_bar_shows_nothing(capsys):
    with task_bar("iter-0 generation", 4, unit="tasks", quiet=True) as bar:
        bar.update(4)
    assert capsys.readouterr().err == ""


def test_scoring_bar_counts_scores_and_unscored(capsys):
    bar = ScoringBar("iter-0 scoring")
    bar.start("gsm8k", 3, 0)
    for score, infra in ((1.0, False), (0.0, False), (0.0, True)):
        bar.advance("gsm8k", SimpleNamespace(score=score, infrastructure=infra))
    bar.finish("gsm8k")
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "iter-0 scoring: 3/3 workflows" in last and "mean score 0.500" in last and "unscored 1" in last


def test_step_bar_follows_the_trainer_steps(capsys):
    callback = step_bar("iter-0 training")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=2, global_step=0)
    callback.on_train_begin(None, state, None)
    for step in (1, 2):
        state.global_step = step
        callback.on_log(None, state, None, logs={"loss": 0.5 / step})
        callback.on_step_end(None, state, None)
    callback.on_train_end(None, state, None)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "iter-0 training: 2/2 steps" in last and "loss 0.2500" in last


def test_step_bar_draws_on_the_main_process_only(capsys):
    callback = step_bar("iter-0 training")
    state = SimpleNamespace(is_world_process_zero=False, max_steps=2, global_step=2)
    callback.on_train_begin(None, state, None)
    callback.on_step_end(None, state, None)
    callback.on_train_end(None, state, None)
    assert capsys.readouterr().err == ""
