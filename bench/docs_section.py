"""Print a benchmark's Markdown section and, on request, put it into its docs page
(docs/performance.md unless it names another), saying which command rewrites it; and check out
the anchor's code a benchmark compares with, side by side."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERFORMANCE_DOC = ROOT / "docs" / "performance.md"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the section whose heading is `section`'s first line."""
    heading = section.splitlines()[0]
    text = path.read_text() if path.exists() else "# Performance\n\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section.rstrip("\n") + "\n" + ("" if end == -1 else text[end:])
    path.write_text(text)


def rerun_command(argv: list[str] | None = None) -> str:
    """The command that rewrites the running script's section: the script as called from the
    repository root, with its arguments and `--write`."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else Path("bench", script.name)
    args = argv[1:] if "--write" in argv[1:] else [*argv[1:], "--write"]
    return "python " + shlex.join([str(shown), *args])


def with_rerun_command(lines: list[str], argv: list[str] | None = None) -> list[str]:
    """The section with a line naming its command after the heading, unless its text names
    the command already (`python bench/x.py ...`): a reader knows how each figure was made."""
    command = rerun_command(argv)
    script = command.split()[1]
    if any(f"`python {script}" in line for line in lines):
        return lines
    return [lines[0], "", f"Rewritten by `{command}`.", *lines[1:]]


def publish(lines: list[str], write: bool, doc: Path = PERFORMANCE_DOC) -> None:
    """`doc`: the page the section belongs to (e.g. docs/reliability.md)."""
    section = "\n".join(with_rerun_command(lines))
    print(section)
    if write:
        write_section(doc, section)


def anchor_tree(folder: Path, commit: str) -> Path:
    """The anchor's code: a detached git worktree of `commit` in `folder`, made once."""
    tree = folder / f"anchor-{commit}"
    if not (tree / "stbench").is_dir():
        done = subprocess.run(["git", "worktree", "add", "--detach", str(tree), commit],
                              cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"git worktree add {tree} {commit} failed:\n{done.stderr[-3000:]}")
    return tree
