"""The README's "Adding a typed task" sample is a complete module: dropped into the
package as the README says, it passes the project's linters and mypy, and imports."""

from __future__ import annotations

from ..conftest import Project
from ..markdown import code_blocks, section


def test_the_task_guide_sample_is_a_working_module(installed: Project) -> None:
    guide = section((installed.path / "README.md").read_text(), "Adding a typed task")
    (sample,) = code_blocks(guide, "python")
    assert "tasks/images.py" in guide
    module = installed.path / "src" / installed.package / "tasks" / "images.py"
    module.write_text(sample)
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
            f"from {installed.package}.tasks.images import ResizeInput, resize\n"
            "print(resize(ResizeInput(image_id='a', width=64)).path)",
        )
        assert imported.stdout.strip() == "resized/a-64.png"
    finally:
        module.unlink()  # the project is shared with the other checks of this session
