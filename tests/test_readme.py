"""Every example in README.md runs, and prints what the README shows: the README cannot drift from the program.

Each ```console block's ``$`` commands run for real (bash, with ``semsearch`` this interpreter's), and
what each prints (stdout and stderr, as a terminal shows them) is compared with the lines under it;
each ```python block runs too, a ``>>>`` session as a doctest. Both sides are normalised first for
what legitimately varies: progress bars, timings, timestamps, sizes, the working directory.

Each ``##`` section runs in a directory of its own, in which ``news.semsearch`` is the bundled sample
built as "Search in a minute" builds it: the sample is built once (by that section's own command),
and every section starts from a copy, so a section's examples depend on the sections before it
only through that build. Files a section shows with ``$ cat FILE`` are written from what it shows.

A block that cannot run here has ``<!-- readme-test: skip (why) -->`` on the line before it; one
whose output varies, ``<!-- readme-test: output-varies -->`` (run, exit status compared). The
sections in COVERED_ELSEWHERE are run by their own tests. A block neither run nor marked fails.
"""

from __future__ import annotations

import contextlib
import doctest
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.readme_blocks import (
    README,
    RUNNABLE,
    Block,
    Command,
    read_blocks,
    text_after,
)

REPO = README.parent
COVERED_ELSEWHERE = {
    "Use it from LangChain": "tests/integrations/test_readme_langchain.py",
    "Search over HTTP, and a search page": "the HTTP server's README tests (tests/server/)",
}
# The command whose collection every section starts from; its output is compared where the README shows it.
SAMPLE_BUILD = "semsearch build abcnews-sample -o news.semsearch"
SAMPLE = "news.semsearch"
COMMAND_TIMEOUT = 600

BLOCKS = read_blocks()


# What is run, and how -------------------------------------------------------------------------------------


def disposition(block: Block) -> str:
    """``covered`` (another test's section), ``skip``, ``run`` (output compared) or ``status`` (exit status only)."""
    if block.section in COVERED_ELSEWHERE:
        return "covered"
    if block.marker == "skip":
        return "skip"
    return "status" if block.marker == "output-varies" else "run"


def examples() -> list[Block]:
    return [block for block in BLOCKS if block.language in RUNNABLE]


def sections_to_run() -> list[str]:
    names: list[str] = []
    for block in examples():
        if disposition(block) in ("run", "status") and block.section not in names:
            names.append(block.section)
    return names


# Normalising what legitimately varies ---------------------------------------------------------------------

# A tqdm bar: "embedding: 100%|██████████| 21.3k/21.3k [00:05<00:00, 3.65k texts/s]", or without a total,
# "embedding: 2.00 texts [00:02, 1.27s/ texts]"; a Ctrl-C typed over one shows as a trailing ^C.
PROGRESS = re.compile(r"^\s*[\w .-]+:\s.*\[\d+:\d\d[^\]]*\]\s*(\^C)?\s*$")
TIMESTAMP = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
SIZE = re.compile(r"\b\d[\d,]*(\.\d+)?\s?[KMGT]i?B\b")
DURATION = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|min)\b")


def is_progress(segment: str) -> bool:
    if PROGRESS.match(segment):
        return True
    return "|" in segment and any(mark in segment for mark in ("it/s", "texts/s", "%"))


def normalise(text: str, workdir: Path | None = None) -> list[str]:
    """The lines of a command's output without progress bars, with variable figures replaced by placeholders."""
    if workdir is not None:
        for directory in {str(workdir), str(workdir.resolve())}:
            text = text.replace(directory + os.sep, "").replace(directory, ".")
    text = text.replace(str(REPO) + os.sep, "").replace(sys.prefix, "<venv>")
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        # A bar redraws itself after carriage returns: keep only what is not a bar.
        kept = [segment for segment in line.split("\r") if segment.strip() and not is_progress(segment)]
        if not kept and line.strip():
            continue
        line = " ".join(kept)
        line = TIMESTAMP.sub("<timestamp>", line)
        line = SIZE.sub("<size>", line)
        line = DURATION.sub("<duration>", line)
        lines.append(line.rstrip())
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def expected_failure(shown: list[str]) -> bool:
    """A command the README shows failing (an ``Error:`` or ``Usage:`` line) must exit with a non-zero status."""
    return any(line.startswith(("Error:", "Usage:")) for line in shown)


# Running ---------------------------------------------------------------------------------------------------


@dataclass
class Result:
    returncode: int
    output: str  # stdout and stderr interleaved as written


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory for the front of PATH whose ``semsearch`` is this interpreter's ``semsearch.cli``."""
    directory = tmp_path_factory.mktemp("readme-bin")
    shim = directory / "semsearch"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "from semsearch.cli import main; main()" "$@"\n')
    shim.chmod(0o755)
    return directory


def run_command(text: str, workdir: Path, bin_dir: Path) -> Result:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr in the order they were written
    env.pop("SEMSEARCH_TOKEN", None)
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc", "-o", "pipefail", "-c", text],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=COMMAND_TIMEOUT, check=False,
    )
    return Result(completed.returncode, completed.stdout.decode("utf-8", errors="replace"))


def prepare(workdir: Path) -> None:
    """The files the README's commands take for granted in the directory they run in."""
    # `source .venv/bin/activate`, from the clone the README is read in.
    venv = Path(sys.prefix) if (Path(sys.prefix) / "bin" / "activate").is_file() else REPO / ".venv"
    (workdir / ".venv").symlink_to(venv, target_is_directory=True)
    # "Your own corpus": a malformed row (line 3, column 13) and an empty line, as the prose around it says.
    (workdir / "broken.csv").write_bytes(
        b"publish_date,headline_text\n20030301,floods cut roads in the north\n"
        b"20030302,caf\xe9 owner fined\n\n20030303,rain brings relief\n"
    )


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, bin_dir: Path) -> tuple[Path, Result]:
    """The bundled sample, built once by the README's own command; every section starts from a copy."""
    workdir = tmp_path_factory.mktemp("readme-sample")
    result = run_command(SAMPLE_BUILD, workdir, bin_dir)
    assert result.returncode == 0, f"{SAMPLE_BUILD} failed:\n{result.output}"
    return workdir / SAMPLE, result


@dataclass
class SectionRun:
    workdir: Path
    bin_dir: Path
    sample: tuple[Path, Result]
    namespace: dict = field(default_factory=lambda: {"__name__": "readme_example"})
    problems: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)

    def console(self, block: Block, compare: bool) -> None:
        for command in block.commands():
            self.command(block, command, compare)
        self.counts["console compared" if compare else "console status only"] += 1

    def command(self, block: Block, command: Command, compare: bool) -> None:
        words = shlex.split(command.text, comments=True)
        if words[:1] == ["cat"] and len(words) == 2 and not (self.workdir / words[1]).exists():
            (self.workdir / words[1]).write_text("\n".join(command.shown) + "\n", encoding="utf-8")
        if shlex.join(words) == SAMPLE_BUILD:
            # The sample is built once, by this very command: its run is the one the fixture made.
            sample_path, result = self.sample
            shutil.rmtree(self.workdir / SAMPLE, ignore_errors=True)
            shutil.copytree(sample_path, self.workdir / SAMPLE)
        else:
            result = run_command(command.text, self.workdir, self.bin_dir)
        where = f"README.md:{command.line}: $ {command.text}"
        if expected_failure(command.shown) != (result.returncode != 0):
            self.problems.append(f"{where}\nexit status {result.returncode}, the README shows "
                                 f"{'a failure' if expected_failure(command.shown) else 'success'}:\n{result.output}")
            return
        if not compare:
            return
        shown = normalise("\n".join(command.shown))
        got = normalise(result.output, self.workdir)
        if shown != got:
            self.problems.append(f"{where}\nthe README shows (normalised):\n" + "\n".join(shown)
                                 + "\nthe command printed (normalised):\n" + "\n".join(got))

    def python(self, block: Block, compare: bool) -> None:
        if block.is_doctest:
            self.doctest(block, compare)
            return
        printed = io.StringIO()
        try:
            with working_directory(self.workdir), contextlib.redirect_stdout(printed):
                exec(compile(block.body, f"{README}:{block.line}", "exec"), self.namespace)  # noqa: S102 - the README's own code
        except Exception as error:  # noqa: BLE001 - reported with the block it came from
            self.problems.append(f"{block.where}: the python block raised {type(error).__name__}: {error}")
            return
        shown = text_after(block, BLOCKS)
        if compare and shown is not None:
            want, got = normalise(shown.body), normalise(printed.getvalue(), self.workdir)
            if want != got:
                self.problems.append(f"{block.where}: the README shows (normalised):\n" + "\n".join(want)
                                     + "\nthe block printed (normalised):\n" + "\n".join(got))
            self.counts["python compared"] += 1
        else:
            self.counts["python run"] += 1

    def doctest(self, block: Block, compare: bool) -> None:
        workdir = self.workdir

        class Checker(doctest.OutputChecker):
            def check_output(self, want: str, got: str, optionflags: int) -> bool:
                return not compare or normalise(want) == normalise(got, workdir)

        test = doctest.DocTestParser().get_doctest(block.body, self.namespace, block.where, str(README), block.line)
        report: list[str] = []
        runner = doctest.DocTestRunner(checker=Checker(), optionflags=doctest.ELLIPSIS)
        with working_directory(workdir):
            results = runner.run(test, out=report.append, clear_globs=False)
        if results.failed:
            self.problems.append(f"{block.where}: the >>> session differs:\n" + "".join(report))
        self.counts["python doctest compared" if compare else "python doctest run"] += 1


@contextlib.contextmanager
def working_directory(path: Path):
    """contextlib.chdir, which Python 3.10 lacks."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


# The tests ---------------------------------------------------------------------------------------------------


def test_every_example_is_run_or_marked() -> None:
    """Each console and python block is run here, run by another section's test, or marked with why not."""
    problems = [block.marker_error for block in BLOCKS if block.marker_error]
    problems += [f"{block.where}: a readme-test marker on a {block.language or 'plain'} block, which is never run"
                 for block in BLOCKS if block.marker and block.language not in RUNNABLE]
    problems += [f"{block.where}: a ```{block.language} block; write it as ```console ($ commands) or ```python "
                 "so that this test runs it" for block in BLOCKS if block.language in ("sh", "bash", "shell", "pycon")]
    sections = {block.section for block in BLOCKS}
    problems += [f"COVERED_ELSEWHERE names a section the README does not have: {name!r}"
                 for name in COVERED_ELSEWHERE if name not in sections]
    for block in examples():
        if disposition(block) in ("run", "status") and block.language == "console":
            try:
                if not block.commands():
                    problems.append(f"{block.where}: a console block with no `$ ` command; mark it if it cannot run")
            except ValueError as error:
                problems.append(str(error))
    assert not problems, "\n".join(problems)
    assert any(block.language == "console" and SAMPLE_BUILD in block.body for block in examples()), \
        f"the README should build the sample with `{SAMPLE_BUILD}`: every section starts from that collection"
    assert sections_to_run()

    tally = Counter(disposition(block) for block in examples())
    print(f"\nREADME examples: {len(examples())} console and python blocks: {tally['run'] + tally['status']} run "
          f"({tally['run']} with their output compared, {tally['status']} their exit status only), "
          f"{tally['skip']} skipped, {tally['covered']} covered by the tests of their sections")
    for block in examples():
        if disposition(block) == "skip":
            print(f"  skipped {block.where}: {block.reason}")


@pytest.mark.parametrize("section", sections_to_run())
def test_section_examples_print_what_the_readme_shows(section: str, tmp_path: Path, bin_dir: Path,
                                                     sample: tuple[Path, Result]) -> None:
    prepare(tmp_path)
    shutil.copytree(sample[0], tmp_path / SAMPLE)
    run = SectionRun(tmp_path, bin_dir, sample)
    for block in examples():
        if block.section != section or disposition(block) not in ("run", "status"):
            continue
        compare = disposition(block) == "run"
        if block.language == "console":
            run.console(block, compare)
        else:
            run.python(block, compare)
    print(f"\n{section}: " + ", ".join(f"{n} {k}" for k, n in sorted(run.counts.items())))
    assert not run.problems, f"{section}: {len(run.problems)} example(s) differ from the program:\n\n" \
        + "\n\n".join(run.problems)
