"""The post-generation hook removes the files of unselected options and prints next
steps that work as printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

from ..markdown import code_blocks, commands, section
from ..matrix import TEMPLATE
from .test_pre_gen import load_hook

post_gen = load_hook("post_gen_project")
ANSWERS = {"package_name": "acme_jobs", "project_slug": "acme-jobs", "broker": "rabbitmq"}


def test_api_files_are_listed_only_when_the_api_is_off() -> None:
    other_plot = Path("docs/performance-redis.png")  # ANSWERS are RabbitMQ's
    assert post_gen.paths_to_remove({**ANSWERS, "include_api": True}) == [other_plot]
    assert post_gen.paths_to_remove({**ANSWERS, "include_api": False}) == [
        Path("src/acme_jobs/api"),
        Path("tests/unit/test_api.py"),
        Path("tests/property/test_api_schema.py"),
        Path("tests/integration/test_api_roundtrip.py"),
        Path("benchmarks/api_latency.py"),
        Path("deploy/kubernetes/base/api.yaml"),
        other_plot,
    ]


def test_dead_letter_files_are_listed_only_for_redis() -> None:
    assert post_gen.paths_to_remove({**ANSWERS, "include_api": True, "broker": "redis"}) == [
        Path("src/acme_jobs/dead_letters.py"),
        Path("tests/unit/test_dead_letters.py"),
        Path("docs/performance-rabbitmq.png"),
    ]


def test_remove_paths_deletes_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "src/acme_jobs/api").mkdir(parents=True)
    (tmp_path / "src/acme_jobs/api/app.py").write_text("")
    for test_file in post_gen.paths_to_remove({**ANSWERS, "include_api": False})[1:]:
        (tmp_path / test_file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / test_file).write_text("")
    post_gen.remove_paths(tmp_path, post_gen.paths_to_remove({**ANSWERS, "include_api": False}))
    assert not (tmp_path / "src/acme_jobs/api").exists()
    assert not (tmp_path / "tests/unit/test_api.py").exists()
    assert (tmp_path / "tests/unit").is_dir()


def test_next_steps_name_the_project_and_quote_its_folder() -> None:
    steps = post_gen.next_steps(ANSWERS, Path("/home/jane/my projects/acme-jobs"))
    assert "cd '/home/jane/my projects/acme-jobs'" in steps
    assert "uv run acme-jobs submit process_data" in steps
    assert "&" not in steps  # the worker gets its own terminal, not the background


def test_next_steps_cd_into_the_output_folder_given_with_o(tmp_path: Path) -> None:
    output = tmp_path / "elsewhere"
    command = [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"  cd {output / 'acme-jobs'}\n" in result.stdout


def test_next_steps_setup_commands_are_contributings(tmp_path: Path) -> None:
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(tmp_path)))
    setup = section((project / "CONTRIBUTING.md").read_text(), "1. Set up")
    assert commands(code_blocks(setup, "bash")[0]) == list(post_gen.SETUP_COMMANDS)
