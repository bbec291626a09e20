"""Where the server spends its time: py-spy samples of the server process, summarized as text.

A benchmark figure says how fast; a profile says what bounds it. ``py-spy
record --format raw`` writes collapsed stacks (``frame;frame;... count``);
this module runs it against a server process for a phase and reduces the
stacks to the functions with the most samples on top of the stack (self),
the most samples anywhere below them (inclusive), and the hottest path (the
heaviest child at each level from the root), which is what the benchmark
prints. py-spy is optional: without it the benchmark simply has no profile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def py_spy() -> str | None:
    """The py-spy executable, beside this Python or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_recording(
    pid: int, seconds: float, output: Path, *, gil: bool = False
) -> subprocess.Popen[bytes] | None:
    """Start ``py-spy record`` on ``pid`` for ``seconds``; None when py-spy is not installed."""
    executable = py_spy()
    if executable is None:
        return None
    argv = [
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(int(seconds), 1)),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    ]
    if gil:
        argv.append("--gil")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish_recording(process: subprocess.Popen[bytes] | None) -> str:
    """Wait for py-spy; its complaint if it failed, else ''."""
    if process is None:
        return "py-spy is not installed"
    _, err = process.communicate(timeout=120)
    return "" if process.returncode == 0 else err.decode(errors="replace").strip()


@dataclass(frozen=True)
class Summary:
    samples: int
    top_self: list[tuple[str, float]]
    top_inclusive: list[tuple[str, float]]
    hottest_path: list[tuple[str, float]]

    def describe(self, limit: int = 12) -> str:
        lines = [f"{self.samples:,} samples"]
        lines.append("  self (on top of the stack):")
        lines += [f"    {share:5.1%}  {frame}" for frame, share in self.top_self[:limit]]
        lines.append("  inclusive (anywhere on the stack):")
        lines += [f"    {share:5.1%}  {frame}" for frame, share in self.top_inclusive[:limit]]
        lines.append("  hottest path (heaviest child at each level):")
        lines += [
            f"    {'  ' * min(depth, 20)}{share:5.1%}  {frame}"
            for depth, (frame, share) in enumerate(self.hottest_path)
        ]
        return "\n".join(lines)


def describe_file(path: Path, failure: str = "") -> str:
    """The summary of a recorded profile, or why there is none."""
    if failure or not path.exists():
        return f"no profile: {failure or 'py-spy wrote nothing'}"
    return summarize(path.read_text()).describe()


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` with the path cut to its last two parts."""
    name, _, where = frame.partition(" (")
    if not where:
        return frame
    path, _, line = where.rstrip(")").rpartition(":")
    return f"{name} ({'/'.join(Path(path).parts[-2:])}:{line})"


def summarize(collapsed: str) -> Summary:
    """Reduce collapsed stacks (one ``a;b;c count`` per line) to self, inclusive and hot path."""
    stacks: list[tuple[list[str], int]] = []
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([_short(f) for f in stack.split(";")], int(count)))
    total = sum(n for _, n in stacks) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for frames, n in stacks:
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    return Summary(
        samples=total,
        top_self=[(f, n / total) for f, n in own.most_common(25)],
        top_inclusive=[(f, n / total) for f, n in anywhere.most_common(25)],
        hottest_path=_hottest_path(stacks, total),
    )


def _hottest_path(stacks: list[tuple[list[str], int]], total: int) -> list[tuple[str, float]]:
    path: list[tuple[str, float]] = []
    current = stacks
    depth = 0
    while current:
        weights: Counter[str] = Counter()
        for frames, n in current:
            if len(frames) > depth:
                weights[frames[depth]] += n
        if not weights:
            break
        frame, n = weights.most_common(1)[0]
        path.append((frame, n / total))
        current = [(f, c) for f, c in current if len(f) > depth and f[depth] == frame]
        depth += 1
    return path
