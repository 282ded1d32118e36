"""The `stbench …` and `make …` commands that README.md and docs/*.md show, as argv lists.

Read from fenced code blocks (one command per line, `\\` continuations joined, `$ ` prompts,
`# comments`, pipes, `&&`, `&` and redirections dropped) and from inline code spans. A span
is often part of a sentence ("`stbench run --dry_run` does the same"), so it is marked
`inline` and the test fills in the flags it leaves out. Placeholders a reader replaces
(`<trainer ECR URI>`, `TRAINER_URI`, `ROLE_ARN`, `"$ROLE"`, `$(output Role)`) become plausible
values, and the command remembers that it had some.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

# A reader's placeholder -> a value of the right shape. ECR-shaped URIs would name an AWS
# host; the image flags take any registry, so a local one stands in.
TRAINER = "127.0.0.1:5000/stbench-trainer:latest"
ROLE = "arn:aws:iam::123456789012:role/stbench-execution"
PLACEHOLDERS = {  # as a word, or as a shell variable ($ROLE, "$TRAINER_URI")
    "TRAINER_URI": TRAINER, "ROLE_ARN": ROLE, "ROLE": ROLE, "BUCKET": "stbench-docs-bucket",
    "S3_ROOT": "s3://stbench-docs-bucket/stbench", "REGION": "us-east-1", "TAG": "docs-example",
    "RECORDED_TAG": "recorded-study", "HOME": "/home/user",
}
ANGLE_PLACEHOLDERS = (  # a keyword in `<…>` -> its value
    ("account", "123456789012"), ("uri", TRAINER), ("image", TRAINER), ("arn", ROLE),
    ("role", "stbench-execution"), ("bucket", "stbench-docs-bucket"), ("region", "us-east-1"),
    ("tag", "docs-example"), ("sha", "0123abc"), ("version", "0.1.0"),
)
SHELL_BLOCKS = {"", "bash", "sh", "shell", "console"}  # fenced blocks whose lines are commands
OPERATORS = {"|", "||", "&&", ";", "&"}
FENCE = re.compile(r"^\s*(```|~~~)\s*(\w*)")
SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)
COMMAND_START = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:\.venv/bin/)?(stbench|make)(\s|$)")
SUBSTITUTION = re.compile(r"\$\((?:[^()]|\([^()]*\))*\)")


@dataclass(frozen=True)
class DocCommand:
    page: str
    line: int
    text: str  # as the page shows it
    argv: tuple[str, ...]  # placeholders filled in; argv[0] is "stbench" or "make"
    env: tuple[tuple[str, str], ...]  # `NAME=value` words before it
    inline: bool  # from a code span in a sentence: flags the sentence is not about are left out
    placeholders: bool  # the reader must fill something in: never run as shown

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


def _angle(match: re.Match) -> str:
    words = match.group(1).lower()
    return next((value for key, value in ANGLE_PLACEHOLDERS if key in words), "placeholder")


def _fill(text: str) -> tuple[str, bool]:
    """The text with placeholders replaced, and whether it had any."""
    filled = SUBSTITUTION.sub(lambda m: _substituted(m.group(0)), text)
    filled = re.sub(r"<([^<>\n]+)>", _angle, filled)
    filled = re.sub(r"\$\{?([A-Z_][A-Z0-9_]*)\}?",
                    lambda m: PLACEHOLDERS.get(m.group(1), m.group(0)), filled)
    for name, value in PLACEHOLDERS.items():  # a word, not a variable's name (TAG=my-study)
        filled = re.sub(rf"(?<![\w$-]){re.escape(name)}(?![\w=-])", value, filled)
    filled = re.sub(r"=…(?=\s|$)", "=placeholder", filled)  # `make remote ROLE=…`
    return filled, filled != text


def _substituted(command: str) -> str:
    """What a `$(...)` in a shown command stands for: the trainer URI that `make push`
    printed, or an output of stbench's CloudFormation stack."""
    if "trainer" in command:
        return TRAINER
    return ROLE if "Role" in command else "placeholder"


def _commands_in(text: str) -> list[tuple[list[str], tuple[tuple[str, str], ...]]]:
    """The stbench and make commands of one shell line, without environment assignments,
    redirections and what other commands a pipe or `&&` chains to them."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: not a shell line
        return []
    commands, current = [], []
    for token in [*tokens, ";"]:
        if token in OPERATORS:
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    found = []
    for words in commands:
        env = []
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            env.append(tuple(words[0].split("=", 1)))
            words = words[1:]
        argv: list[str] = []
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in {">", ">>", "<", "2>", "&>"} or re.fullmatch(r"\d?>>?", word):
                skip = True
            elif not re.fullmatch(r"\d?>&\d", word) and word not in {"...", "…"}:
                argv.append(word)
        if argv and argv[0] in ("stbench", "make", ".venv/bin/stbench"):
            found.append(([Path(argv[0]).name, *argv[1:]], tuple(env)))
    return found


def _blocks(lines: list[str]) -> list[tuple[int, str]]:
    """(line number, shell line) of every fenced block's command lines, continuations joined."""
    out, inside, shell, pending, start = [], False, False, "", 0
    for number, line in enumerate(lines, 1):
        if fence := FENCE.match(line):
            inside, pending = not inside, ""
            shell = inside and fence.group(2) in SHELL_BLOCKS
            continue
        if not shell:
            continue
        stripped = line.strip()
        if stripped.startswith("$ "):
            stripped = stripped[2:]
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((start, pending + stripped))
        pending = ""
    return out


def _prose(lines: list[str]) -> list[tuple[int, str]]:
    """(first line number, text) of every paragraph outside fenced blocks."""
    out, inside, paragraph, start = [], False, [], 0
    for number, line in enumerate([*lines, ""], 1):
        if FENCE.match(line):
            inside = not inside
        if inside or FENCE.match(line) or not line.strip():
            if paragraph:
                out.append((start, "\n".join(paragraph)))
            paragraph = []
            continue
        if not paragraph:
            start = number
        paragraph.append(line)
    return out


def doc_commands(page: Path) -> list[DocCommand]:
    lines = page.read_text().splitlines()
    name = str(page.relative_to(ROOT))
    found: list[DocCommand] = []
    for number, text in _blocks(lines):
        if COMMAND_START.match(text.strip()):
            filled, had = _fill(text)
            found += [DocCommand(name, number, text.strip(), tuple(argv), env, False, had)
                      for argv, env in _commands_in(filled)]
    for start, paragraph in _prose(lines):
        for match in SPAN.finditer(paragraph):
            code = " ".join(match.group(2).split())
            if not COMMAND_START.match(code):
                continue
            number = start + paragraph.count("\n", 0, match.start())
            row = lines[number - 1]
            if "stbench: error:" in row:  # a bad-input example: tests/unit/test_bad_input.py
                continue
            filled, had = _fill(code)
            found += [DocCommand(name, number, code, tuple(argv), env, True, had)
                      for argv, env in _commands_in(filled) if len(argv) > 1]
    return found


def all_doc_commands() -> list[DocCommand]:
    return [command for page in PAGES for command in doc_commands(page)]


if __name__ == "__main__":
    for command in all_doc_commands():
        flags = ("inline " if command.inline else "") + ("filled " if command.placeholders else "")
        print(f"{command.where}\n    -> {flags}{shlex.join(command.argv)}")
