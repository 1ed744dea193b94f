"""The README's example blocks, read for tests/test_readme.py: where each is, what it runs, what it shows.

A ```console block is a list of ``$ `` commands (a line ending in ``\\`` goes on with the next), each
followed by the lines it prints; a ```python block is a script, or a ``>>>`` session run as a doctest.
An HTML comment on the line before a block says how the test treats it:

    <!-- readme-test: skip (why it cannot run here) -->   not run; counted as skipped
    <!-- readme-test: output-varies -->                   run, only the exit status compared
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

# The languages whose blocks are examples to run; other blocks (text, toml, a bare ```) are not.
RUNNABLE = ("console", "python")
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>[^)]*)\))?\s*-->$")
KINDS = ("skip", "output-varies")


@dataclass
class Command:
    line: int  # README line of the ``$ ``
    text: str  # the command, continuation lines joined
    shown: list[str] = field(default_factory=list)  # the lines under it, up to the next command


@dataclass
class Block:
    section: str  # the ## heading it is under (the # title before the first one)
    subsection: str | None  # the ### heading, if any
    language: str
    line: int  # README line of the opening fence
    body: str
    marker: str | None = None  # "skip", "output-varies" or None
    reason: str | None = None
    marker_error: str | None = None  # a readme-test comment this module does not understand

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.section}{' / ' + self.subsection if self.subsection else ''})"

    @property
    def is_doctest(self) -> bool:
        return any(line.startswith(">>>") for line in self.body.splitlines())

    def commands(self) -> list[Command]:
        """The block's ``$`` commands with the output shown under each; any line before the first is an error."""
        commands: list[Command] = []
        lines = self.body.splitlines()
        index = 0
        while index < len(lines):
            raw = lines[index]
            number = self.line + 1 + index
            index += 1
            if raw.startswith("$ "):
                text = raw[2:]
                while text.endswith("\\") and index < len(lines):
                    text = text[:-1].rstrip() + " " + lines[index].strip()
                    index += 1
                commands.append(Command(number, text.strip()))
            elif commands:
                commands[-1].shown.append(raw)
            elif raw.strip():
                raise ValueError(f"README.md:{number}: a console block's first line should be a `$ ` command: {raw!r}")
        for command in commands:
            while command.shown and not command.shown[-1].strip():
                command.shown.pop()
        return commands


def read_blocks(path: Path = README) -> list[Block]:
    """Every fenced block of the README, with its section and marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    section, subsection = "", None
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            language = line[3:].strip()
            start = index
            index += 1
            body: list[str] = []
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            block = Block(section, subsection, language, start + 1, "\n".join(body) + "\n")
            previous = lines[start - 1].strip() if start else ""
            if "readme-test" in previous:
                match = MARKER.match(previous)
                if not match or match.group("kind") not in KINDS:
                    block.marker_error = f"README.md:{start}: a readme-test comment this test does not know: {previous}"
                elif match.group("kind") == "skip" and not (match.group("reason") or "").strip():
                    block.marker_error = f"README.md:{start}: a skip marker says why: <!-- readme-test: skip (why) -->"
                else:
                    block.marker, block.reason = match.group("kind"), match.group("reason")
            blocks.append(block)
        elif line.startswith("## "):
            section, subsection = line[3:].strip(), None
        elif line.startswith("### "):
            subsection = line[4:].strip()
        elif line.startswith("# ") and not section:
            section = line[2:].strip()
        index += 1
    return blocks


def text_after(block: Block, blocks: list[Block]) -> Block | None:
    """The ```text block right after a python script, which shows what the script prints, if there is one."""
    lines = README.read_text(encoding="utf-8").splitlines()
    end = block.line + len(block.body.splitlines())  # the closing fence's index (0-based)
    following = next((candidate for candidate in blocks if candidate.line > block.line), None)
    if following is None or following.language != "text":
        return None
    between = lines[end + 1:following.line - 1]
    return following if not any(line.strip() for line in between) else None
