"""Shared fixtures: an offline tokenizer and tiny Llama models (CPU, float32)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

CORPUS = [
    "class Workflow:\n    def __init__(self, config, problem):\n        self.problem = problem\n"
    "        self.custom = operator.Custom(self.llm, self.problem)\n\n"
    "    async def run_workflow(self):\n"
    "        solution = await self.custom(instruction='Think step by step.')\n"
    "        return solution\n",
    "<graph>\n    review sc_ensemble programmer answer_generate code_generate test\n</graph>",
    "Output a workflow graph based on this template. Here is the graph without any problem information:",
] * 10


@pytest.fixture(scope="session")
def tokenizer():
    from sf_train.testing import build_tokenizer

    return build_tokenizer(CORPUS)


@pytest.fixture
def train_kwargs(tmp_path):
    """TrainingArguments that keep a CPU test fast and quiet."""
    return dict(
        output_dir=str(tmp_path / "out"),
        bf16=False,
        use_cpu=True,
        report_to="none",
        per_device_train_batch_size=2,
        gradient_checkpointing=False,
        logging_steps=1,
        disable_tqdm=True,
        dataset_num_proc=None,
    )


@pytest.fixture(scope="session")
def demo_warmup(tmp_path_factory):
    """The demo's tiny generator after a short warm-up (shared by the loop and CLI tests)."""
    from sf_train.demo import demo_problems, warm_up

    directory = tmp_path_factory.mktemp("demo") / "warmup-model"
    return warm_up(directory, demo_problems(range(4)), steps=60)


@pytest.fixture
def require_docker():
    """Docker-backed tests fail (not skip) when SF_REQUIRE_DOCKER=1 and no engine answers."""
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("SF_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker engine required (SF_REQUIRE_DOCKER=1) but unavailable: {exc}")
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def ray_cluster():
    """The 2-node local Ray cluster (one dockerd per node) shared with the other packages' Ray tests.

    It is shared in this pytest process (``sf_sandbox.testing.shared_ray_cluster``); this process is
    connected to it. Skips, or fails with SF_REQUIRE_DOCKER=1, when it cannot run here.
    """
    from sf_sandbox.testing import require_ray_cluster, shared_ray_cluster

    require_ray_cluster()
    with shared_ray_cluster() as cluster:
        yield cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the engine (through a fixture) carry the ``docker`` marker."""
    from sf_sandbox.testing import mark_docker_tests

    mark_docker_tests(items)
