"""The README's "Adding a typed task" sample is a complete module: dropped into the
package as the README says, it passes the project's linters and mypy, imports, and the
app registers it on the queue it names without any other edit; the README's set-up
for scripts makes calls publish through the project's app."""

from __future__ import annotations

from ..conftest import Project
from ..markdown import code_blocks, section


def test_the_task_guide_sample_is_a_working_module(installed: Project) -> None:
    guide = section((installed.path / "README.md").read_text(), "Adding a typed task")
    sample, setup = code_blocks(guide, "python")
    assert "tasks/images.py" in guide
    module = installed.path / "src" / installed.package / "tasks" / "images.py"
    module.write_text(sample)
    package = installed.package
    try:
        installed.run("uv", "run", "--frozen", "ruff", "check", str(module))
        installed.run("uv", "run", "--frozen", "black", "--check", str(module))
        installed.run("uv", "run", "--frozen", "mypy", str(module))
        imported = installed.run(
            "uv",
            "run",
            "--frozen",
            "python",
            "-c",
            "import os, tempfile\n"
            f"from {package}.config.settings import ENV_PREFIX\n"
            "os.environ[ENV_PREFIX + 'DATA_DIR'] = tempfile.mkdtemp()\n"
            f"{setup}\n"
            "from celery import current_app as app\n"
            "print(app.conf.broker_url.partition(':')[0])\n"
            f"name = '{package}.tasks.images.resize'\n"
            "print(app.amqp.router.route({}, name)['queue'].name)\n"
            f"from {package}.tasks.images import ResizeInput, resize\n"
            "print(resize(ResizeInput(image_id='a', width=64)).path)",
        )
        assert imported.stdout.split() == ["filesystem", "cpu", "resized/a-64.png"], imported.stderr
    finally:
        module.unlink()  # the project is shared with the other checks of this session
