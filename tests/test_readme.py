"""Every ```python block of README.md runs as written, in order, in a fresh
interpreter (no conftest imports), on the current backend. A block preceded
by `<!-- readme-test: skip (why) -->` is left out; only blocks that need
several devices are marked so."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = re.compile(r"<!-- readme-test: skip \((.+?)\) -->\s*$")


def python_blocks(text):
    """`(code, skip_reason)` of each ```python block, in order."""
    blocks, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != "```python":
            continue
        end = lines.index("```", i + 1)
        previous = next((lines[j] for j in range(i - 1, -1, -1)
                         if lines[j].strip()), "")
        reason = SKIP.match(previous.strip())
        blocks.append(("\n".join(lines[i + 1:end]),
                       reason.group(1) if reason else None))
    return blocks


def test_skipped_blocks_say_why_and_need_devices():
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = python_blocks(f.read())
    assert len(blocks) >= 5
    for _, reason in blocks:
        assert reason is None or "devices" in reason


def test_readme_python_blocks_run_in_a_fresh_interpreter(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = python_blocks(f.read())
    script = "\n\n".join(code for code, reason in blocks if reason is None)
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
