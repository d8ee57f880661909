"""`make bench` rewrites docs/benchmarks.md but keeps the "Local demo" section, which
`python -m bench.local_demo` measures (whole emulator runs, minutes each)."""

from __future__ import annotations

from pathlib import Path

from bench.run import kept_local_demo


def test_the_local_demo_section_is_kept_wherever_it_is(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Cold start\nx\n\n## Local demo\n\n| a | b |\n\n## Next\ny\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\n| a | b |\n"
    # Nor does it take the marker of another bench's section that follows it.
    doc.write_text("# B\n\n## Local demo\n\n| a |\n\n<!-- bench.x: begin -->\n## X\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\n| a |\n"
    doc.write_text("# Benchmarks\n\n## Local demo\n\nlast\n")
    assert kept_local_demo(doc) == "\n## Local demo\n\nlast\n"


def test_nothing_is_kept_when_there_is_no_section(tmp_path: Path) -> None:
    assert kept_local_demo(tmp_path / "missing.md") == ""
    (tmp_path / "b.md").write_text("# Benchmarks\n\n## Cold start\n")
    assert kept_local_demo(tmp_path / "b.md") == ""
