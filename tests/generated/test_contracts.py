"""The contracts and task reference a fresh project ships are the ones its code produces,
so the gate passes."""

from __future__ import annotations

from pathlib import Path

from ..conftest import Project


def test_shipped_task_contracts_match_a_fresh_dump(installed: Project, tmp_path: Path) -> None:
    cli = ("uv", "run", "--frozen", installed.combination.slug, "contracts")
    check = installed.run(*cli, "check", "--profile", "test")
    assert "the code matches the committed contracts" in check.stdout
    # Byte for byte: titles, descriptions and examples, which the gate does not compare,
    # included. Regenerate both with ./scripts/regenerate-contracts.
    installed.run(*cli, "dump", "--dir", str(tmp_path), "--profile", "test")
    shipped = {path.name: path.read_text() for path in (installed.path / "contracts").iterdir()}
    assert shipped == {path.name: path.read_text() for path in tmp_path.iterdir()}
    assert len(shipped) >= 5
    docs = tmp_path / "docs"
    installed.run(*cli, "docs", "--docs-dir", str(docs), "--profile", "test")
    shipped_reference = (installed.path / "docs" / "tasks.md").read_text()
    assert shipped_reference == (docs / "tasks.md").read_text()
    assert "## process_data" in shipped_reference


def test_check_fails_until_a_new_contract_is_recorded(installed: Project, tmp_path: Path) -> None:
    # A task whose contract is not committed passes the rules (a new task) but is no
    # baseline for the next change: the gate asks for `contracts dump` and fails.
    cli = ("uv", "run", "--frozen", installed.combination.slug, "contracts")
    folder = tmp_path / "contracts"
    installed.run(*cli, "dump", "--dir", str(folder), "--profile", "test")
    (folder / "process_data.json").unlink()
    check = installed.run(*cli, "check", "--dir", str(folder), "--profile", "test", check=False)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "(task): new task" in check.stdout
    assert f"{folder}/process_data.json (missing)" in check.stderr
    assert f"uv run {installed.combination.slug} contracts dump" in check.stderr
    assert "the code matches" not in check.stdout
