"""The README's LangChain example runs, and prints what the README shows: the section cannot drift from the code."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra is not installed: pip install 'semsearch[langchain]'")

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Use it from LangChain"


def example() -> tuple[str, str]:
    """The section's python block and the text block after it (what the code prints)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start:end if end != -1 else None]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    shown = re.search(r"```python\n.*?```\s*```text\n(.*?)```", section, re.DOTALL)
    assert code and shown, f"{SECTION} should hold a python block followed by a text block of its output"
    return code.group(1), shown.group(1)


def run(code: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"{README}:{SECTION}", "exec"), {"__name__": "readme_example"})
    return printed.getvalue()


def test_the_readme_example_prints_what_the_readme_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, shown = example()
    monkeypatch.chdir(tmp_path)
    assert run(code) == shown
    assert (tmp_path / "notes.semsearch" / "manifest.json").is_file()
    assert run(code) == shown  # the second run opens the stored collection; the same ids replace, not duplicate
