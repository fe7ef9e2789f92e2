"""`imi demo` tells the whole story and exits 0; each step's outcome is checked, not just printed."""

from __future__ import annotations

from imi.demo import run_demo


def test_demo_runs_the_story() -> None:
    lines: list[str] = []
    assert run_demo(lambda line: lines.append(str(line))) == 0
    text = "\n".join(lines)
    assert "verified=True" in text
    assert "credential-suspended" in text
    assert "the kiosk sees verified" in text
    assert '{"demo": "ok"}' in text
