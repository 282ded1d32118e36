"""The docs as tests: every `stbench …` and `make …` command that README.md and docs/*.md
show (code blocks and inline code spans, read by tests/docs_commands.py) parses, and the
quick ones run. A renamed flag, command or make variable then fails CI, not a reader.

- `stbench run` and `stbench launch` go through their own parse steps (`run_request`,
  `study_from_args`: argparse plus the spec's checks, nothing run or created). A word argparse
  does not know becomes a benchmark argument there, so it must be one of the benchmark's
  arguments (a misspelled or removed flag would otherwise pass), and every method must exist.
- The other commands are called through `stbench.cli.main.COMMANDS` with their parser's
  `parse_args` stopping the command as soon as it parsed: the real parser, nothing run.
- `make …` runs as `make -n` (prints the recipe, runs nothing); every `VAR=` it is given must
  be a variable of the Makefile, and the stbench commands it would run are parsed as above.
- Run as shown: `stbench benchmarks`, `stbench methods` and `--help`, the only shown commands
  that finish in seconds with no placeholder, no earlier step and no Docker or AWS. Every
  other one trains models for minutes, needs Docker, AWS or the local endpoint, or reads the
  results of an earlier command, so it is parsed only.

An inline span is often part of a sentence ("`stbench run --dry_run` does the same"): the
flags it leaves out are filled in (a benchmark, a method, a tag), and one that ends in a
flag names that flag, without its value. Placeholders a reader replaces (`TRAINER_URI`,
`<role ARN>`, `"$S3_ROOT"`) become plausible values.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from docs_commands import PAGES, ROOT, DocCommand, all_doc_commands
from example_method import install_example, on_path

from stbench.cli import main as cli
from stbench.cli.launch import study_from_args
from stbench.methods.registry import check_variant, get_method
from stbench.model.catalog import builtin_names, load_benchmark
from stbench.model.errors import UserError
from stbench.model.spec import ExperimentSpec

COMMANDS = all_doc_commands()
STBENCH = [c for c in COMMANDS if c.argv[0] == "stbench"]
MAKE = [c for c in COMMANDS if c.argv[0] == "make"]
RUN_AS_SHOWN = {"benchmarks", "methods"}  # besides --help: seconds, no placeholder, no Docker
INLINE_DEFAULTS = {  # what an inline span may leave out, per command
    "run": ("--benchmark", "synthetic_curves", "--method", "RS", "--experiment_tag", "docs"),
    "launch": ("--benchmark", "synthetic_curves", "--method", "RS"),
    "results": ("--experiment_tag", "docs"),
    "status": ("--experiment_tag", "docs"),
    "cleanup": ("--experiment_tag", "docs"),
}
MAKEFILE = (ROOT / "Makefile").read_text()
EXAMPLE_METHOD = "RSMSR"  # examples/stbench-method-example's, installed as docs/methods.md says


class Parsed(Exception):
    """Raised by a command's parser once it parsed: the command stops before doing anything."""


def completed(command: DocCommand) -> list[str]:
    """argv after `stbench`, with what an inline span left out filled in."""
    argv = list(command.argv[1:])
    if not command.inline or not argv:
        return argv
    defaults = INLINE_DEFAULTS.get(argv[0], ())
    has_study_file = argv[0] == "launch" and any(a.endswith((".yaml", ".yml")) for a in argv)
    for flag, value in zip(defaults[::2], defaults[1::2], strict=True):
        if flag not in argv and not has_study_file and not (
                flag == "--benchmark" and "--from_study" in argv):
            argv += [flag, value]
    return argv


def check_spec(spec: ExperimentSpec) -> None:
    """What `run` and `launch` check before anything needs a benchmark file or a back-end:
    the spec's own checks, the methods, and words argparse did not know against the
    benchmark's arguments (a recorded study's benchmark is unknown here)."""
    if spec.from_study and not spec.benchmark:
        spec = replace(spec, benchmark="synthetic_curves")
    spec.validate()
    for method in spec.method:
        get_method(method)
    for args in spec.method_args:
        check_variant(args)
    if spec.benchmark in builtin_names() or (ROOT / spec.benchmark).is_file():
        name = spec.benchmark if spec.benchmark in builtin_names() else str(ROOT / spec.benchmark)
        load_benchmark(name).with_fixed_values(spec.extra_args)
    elif spec.extra_args and not spec.from_study:
        raise UserError(f"{sorted(spec.extra_args)} are no `stbench run` flags (and "
                        f"{spec.benchmark} is no benchmark here to check them against)")


def parse(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Parse `stbench ARGV` as stbench does; raise UserError (or exit 2) if it would not."""
    if not argv or argv[0] in ("-h", "--help"):
        return  # `stbench --help` runs in test_quick_commands_run
    name, rest = argv[0], argv[1:]
    if name in cli.COMMANDS and ("--help" in rest or "-h" in rest):
        return  # argparse's own help: it runs in test_quick_commands_run
    if name == "run":
        check_spec(cli.run_request(rest)[0])
        return
    if name == "launch":
        for spec in study_from_args(rest).study.specs:
            check_spec(spec)
        return
    if name not in cli.COMMANDS:
        raise UserError(f"unknown command '{name}'")
    real_parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any,
                        **kwargs: Any) -> argparse.Namespace:
        real_parse_args(self, *args, **kwargs)
        raise Parsed

    # every parser (OneLineParser is one): a command parsing another way must not run here
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        cli.COMMANDS[name](rest)


@pytest.fixture(autouse=True)
def in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the docs' paths (launch/tutorial.yaml) are the repository's


@pytest.fixture(scope="module")
def example_method(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/methods.md installs the example method package before it runs its method."""
    return install_example(tmp_path_factory.mktemp("example"))


def test_the_docs_show_commands_of_every_kind() -> None:
    """The extraction finds what the pages show: a broken reader would pass everything."""
    assert {c.argv[1] for c in STBENCH if len(c.argv) > 1} >= {
        "run", "results", "benchmarks", "methods", "launch", "status", "cleanup", "emulator"}
    assert {c.argv[1] for c in MAKE if len(c.argv) > 1} >= {"run", "test", "build", "push",
                                                            "remote"}
    assert any(c.placeholders for c in STBENCH) and any(c.inline for c in STBENCH)


@pytest.mark.parametrize("command", STBENCH, ids=lambda c: f"{c.page}:{c.line}")
def test_stbench_command_parses(command: DocCommand, monkeypatch: pytest.MonkeyPatch,
                                request: pytest.FixtureRequest) -> None:
    argv = completed(command)
    example = any(a.startswith(EXAMPLE_METHOD) for a in argv)
    try:
        with on_path(request.getfixturevalue("example_method")) if example else nullcontext():
            parse(argv, monkeypatch)
    except (UserError, SystemExit) as err:
        if command.inline and re.search(rf"{command.argv[-1]}\b.*: expected (at least )?one "
                                        "argument", str(err)):
            return  # a sentence naming a flag ("`stbench launch --max_cost`"): it exists
        pytest.fail(f"{command.where}\n  as parsed: stbench {shlex.join(argv)}\n  {err}")


@pytest.mark.parametrize("command", MAKE, ids=lambda c: f"{c.page}:{c.line}")
def test_make_command_parses(command: DocCommand, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make -n` with the shown variables; then the stbench commands it would run parse."""
    given = [a.split("=", 1)[0] for a in command.argv[1:] if "=" in a]
    unknown = [v for v in given if not re.search(rf"\b{v}\b", MAKEFILE)]
    assert not unknown, f"{command.where}\n  the Makefile has no variable {unknown}"
    env = {**os.environ, **dict(command.env)}
    result = subprocess.run(["make", "-n", *command.argv[1:]], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command.where}\n  make -n: {result.stderr.strip()}"
    for line in result.stdout.replace("\\\n", " ").splitlines():
        words = line.split(maxsplit=1)
        if words and words[0].endswith("/stbench"):
            words = shlex.split(line)
            try:
                parse(words[1:], monkeypatch)
            except (UserError, SystemExit) as err:
                pytest.fail(f"{command.where}\n  make runs: {line}\n  {err}")


QUICK = list({c.argv: c for c in reversed(STBENCH) if not c.placeholders and (
    c.argv[1:2] == ("--help",) or c.argv[1:2] in {(n,) for n in RUN_AS_SHOWN}
    or "--help" in c.argv)}.values())  # each command once, where the docs first show it


@pytest.mark.parametrize("command", QUICK, ids=lambda c: f"{c.page}:{c.line}")
def test_quick_commands_run(command: DocCommand) -> None:
    """As a reader would type it, in a fresh process: exit 0 and some output."""
    result = subprocess.run([sys.executable, "-m", "stbench.cli.main", *command.argv[1:]],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip(), (
        f"{command.where}\n  exit {result.returncode}: {result.stderr[-2000:]}")


def test_some_commands_run() -> None:
    assert {c.argv[1] for c in QUICK} >= {"benchmarks", "methods"}


# How the work on stbench was organised is no part of its docs: who had which machine, which
# issue or task asked for what, what a brief said. Each pattern is one way that was written.
ORGANISATION = (
    r"\b(?:this|that|other|another|the|each|per) sessions?\b(?!['’]s| token| polic| named)",
    r"\blent\b",
    r"\bissues? #?\d+",
    r"\b(?:task|ticket|requirement) #?[A-Z]?\d+",
    r"\bengineers?\b",
    r"\bhelper (?:session|agent|engineer)s?\b",
    r"\bthe brief\b|\bbrief's\b",
    r"\bdone[- ]when\b",
    r"(?<![\w.])[rR][1-9](?:-[a-z]+|:)",  # requirement labels (R1:, r3-study)
)


def organisation_mentions(text: str) -> list[str]:
    return [f"{number}: {line.strip()[:160]}" for number, line in enumerate(text.splitlines(), 1)
            if any(re.search(p, line, re.IGNORECASE) for p in ORGANISATION)]


def test_organisation_patterns_catch_what_they_should() -> None:
    assert organisation_mentions("no GPU was lent to the session that built it\n"
                                 "Goal (issue 15)\nwhile other sessions kept its load\n"
                                 "The brief's `rm`\n| r1-local | 1 |\n## Speed of the done-when "
                                 "command") == [f"{n}: " + t for n, t in enumerate(
        ["no GPU was lent to the session that built it", "Goal (issue 15)",
         "while other sessions kept its load", "The brief's `rm`", "| r1-local | 1 |",
         "## Speed of the done-when command"], 1)]
    assert organisation_mentions(
        "boto3.session.Session()\nAWS_SESSION_TOKEN\nthe role session named `SageMaker`\n"
        "shared AWS helpers\nml.r5.large\nits session token must match") == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_speak_only_of_the_software(page: Path) -> None:
    if mentions := organisation_mentions(page.read_text()):
        pytest.fail(f"{page.relative_to(ROOT)} speaks of how the work was organised (say what "
                    "was measured, when, with which command):\n  " + "\n  ".join(mentions))


BENCH_HEADING = re.compile(r"^(#{2,3}) .*\((bench/\w+\.py)\)\s*$")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def bench_sections(text: str) -> list[tuple[str, str, str]]:
    """(heading, script, body) of every section named after the bench script that writes it;
    a section ends at the next heading of its level or above."""
    lines, found = text.splitlines(), []
    for index, line in enumerate(lines):
        if match := BENCH_HEADING.match(line):
            level = len(match.group(1))
            end = next((i for i in range(index + 1, len(lines))
                        if re.match(rf"#{{1,{level}}} ", lines[i])), len(lines))
            found.append((line, match.group(2), "\n".join(lines[index + 1:end])))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_measured_figures_say_when_and_how(page: Path) -> None:
    """A section a bench script writes says when it was measured and the command that
    rewrites it (bench/docs_section.py adds the command where the script's text has none)."""
    problems = []
    for heading, script, body in bench_sections(page.read_text()):
        if not (ROOT / script).is_file():
            problems.append(f"{heading}: there is no {script}")
        if not DATE.search(body):
            problems.append(f"{heading}: no date of measurement")
        if not re.search(rf"`(?:\.venv/bin/)?python {re.escape(script)}\b[^`]*`", body):
            problems.append(f"{heading}: no `python {script} …` command that rewrites it")
    if problems:
        pytest.fail(f"{page.relative_to(ROOT)}:\n  " + "\n  ".join(problems))


def test_bench_sections_name_their_command() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from docs_section import with_rerun_command
    finally:
        sys.path.remove(str(ROOT / "bench"))
    section = ["## Speed (bench/speed.py)", "", "Measured on 2026-12-06.", "", "| a |"]
    lines = with_rerun_command(section, [str(ROOT / "bench" / "speed.py"), "--repeats", "3"])
    assert lines[:4] == ["## Speed (bench/speed.py)", "",
                         "Rewritten by `python bench/speed.py --repeats 3 --write`.", ""]
    text = "\n".join(lines)
    assert [(h, s) for h, s, _ in bench_sections(text)] == [(section[0], "bench/speed.py")]
    named = ["## X (bench/x.py)", "", "`python bench/x.py --seeds 2 --write` on 2026-11-30."]
    assert with_rerun_command(named, ["bench/x.py", "--seeds", "2", "--write"]) == named
