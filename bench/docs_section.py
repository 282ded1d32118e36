"""Print a benchmark's Markdown section and, on request, put it into its docs page
(docs/performance.md unless it names another)."""

from __future__ import annotations

from pathlib import Path

PERFORMANCE_DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


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


def publish(lines: list[str], write: bool, doc: Path = PERFORMANCE_DOC) -> None:
    """`doc`: the page the section belongs to (e.g. docs/reliability.md)."""
    section = "\n".join(lines)
    print(section)
    if write:
        write_section(doc, section)
