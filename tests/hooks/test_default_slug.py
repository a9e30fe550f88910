"""The default slug and package name derived from an ordinary project name are valid,
so a no-input render never stops on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cookiecutter.main import cookiecutter

from ..matrix import TEMPLATE

NAMES = [
    pytest.param("Bob's Jobs", "bobs-jobs", "bobs_jobs", id="apostrophe"),
    pytest.param("Bob\u2019s Jobs", "bobs-jobs", "bobs_jobs", id="typographic-apostrophe"),
    pytest.param("Invoice Pipeline 2.0", "invoice-pipeline-2-0", "invoice_pipeline_2_0", id="dot"),
    pytest.param("Data  Jobs", "data-jobs", "data_jobs", id="two-spaces"),
    pytest.param("  Data_Jobs!  ", "data-jobs", "data_jobs", id="underscore-and-bang"),
    pytest.param("Caf\u00e9 Jobs", "cafe-jobs", "cafe_jobs", id="accent"),
    pytest.param("2024 Jobs", "project-2024-jobs", "project_2024_jobs", id="digit-first"),
]


@pytest.mark.parametrize(("name", "slug", "package"), NAMES)
def test_ordinary_names_render_with_a_valid_slug(
    tmp_path: Path, name: str, slug: str, package: str
) -> None:
    project = Path(
        cookiecutter(
            str(TEMPLATE),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"project_name": name},
        )
    )
    assert project.name == slug
    assert (project / "src" / package / "py.typed").is_file()
    assert package.isidentifier()
    assert f'name = "{slug}"' in (project / "pyproject.toml").read_text()
