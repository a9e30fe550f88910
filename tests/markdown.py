"""Read commands and code out of the Markdown the template ships, so a test runs what
the documentation says and the two cannot drift apart."""

from __future__ import annotations

import re

FENCE = re.compile(r"^```(?P<language>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
TRAILING_COMMENT = re.compile(r"\s+#\s.*$")


def section(text: str, heading: str) -> str:
    """The text under the first heading that starts with ``heading``, up to the next one."""
    match = re.search(rf"^#+ {re.escape(heading)}.*?$(?P<body>.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match is not None, f"no heading {heading!r}"
    return match["body"]


def code_blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced blocks of one language, in order."""
    return [m["body"] for m in FENCE.finditer(text) if m["language"] == language]


def commands(block: str) -> list[str]:
    """The command lines of a shell block, without their trailing comments."""
    lines = (TRAILING_COMMENT.sub("", line).strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
