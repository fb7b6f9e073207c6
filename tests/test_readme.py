"""The README and the docs/ pages it points to stay true.

Every ```python block of README.md and of the docs pages in `PAGES` runs as
written, in that order, in one fresh interpreter (no conftest imports), on
one backend (`BLOCKS_RUN_ON`), as each guide runs on one: the pages' blocks
continue the README's notebook example, and what they call is tested on
every backend by the rest of the suite. Running them on all three took
about 130-150 s per backend on CI's machine kind. A block preceded by
`<!-- readme-test: skip (why) -->` is left out; only blocks that need
several devices are marked so. The README stays short (at most
`MAX_README_LINES` lines) and every relative link in README.md and
docs/*.md points at a file that exists.
"""

import glob
import os
import re
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP = re.compile(r"<!-- readme-test: skip \((.+?)\) -->\s*$")
# In the order their blocks run (each page's blocks use the README's).
PAGES = ("README.md", "docs/api.md", "docs/multimodal.md",
         "docs/backbones.md", "docs/scale.md")
MAX_README_LINES = 200
# The backend the pages' blocks run on (torch ran them fastest).
BLOCKS_RUN_ON = "torch"
FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def read(page):
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


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


def all_blocks():
    return [block for page in PAGES for block in python_blocks(read(page))]


def relative_links(text):
    """Link targets outside code: not URLs, not in-page anchors."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue
        yield target.split("#")[0]


def test_skipped_blocks_say_why_and_need_devices():
    blocks = all_blocks()
    assert len(blocks) >= 5
    for _, reason in blocks:
        assert reason is None or "devices" in reason


def test_every_docs_page_with_python_blocks_is_run():
    pages = [os.path.relpath(path, ROOT)
             for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
    missing = [page for page in pages
               if python_blocks(read(page)) and page not in PAGES]
    assert not missing, f"add {missing} to PAGES in {__file__}"


def test_readme_is_short():
    lines = len(read("README.md").splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move "
        f"detail into a docs/ page and link to it")


def test_relative_links_point_at_files():
    pages = ["README.md"] + [
        os.path.relpath(path, ROOT)
        for path in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
    broken = []
    for page in pages:
        folder = os.path.dirname(os.path.join(ROOT, page))
        for target in relative_links(read(page)):
            if target and not os.path.exists(os.path.join(folder, target)):
                broken.append(f"{page}: {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.skipif(keras.backend.backend() != BLOCKS_RUN_ON,
                    reason=f"the pages' blocks run on {BLOCKS_RUN_ON}")
def test_readme_python_blocks_run_in_a_fresh_interpreter(tmp_path):
    script = "\n\n".join(code for code, reason in all_blocks()
                         if reason is None)
    env = {key: value for key, value in os.environ.items()
           if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
