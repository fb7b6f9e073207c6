"""Writing a benchmark's markdown results without losing what people wrote.

Every benchmark regenerates its `.md` from its `.json` after each run; the
reading under the tables (what the numbers say) is written by hand. Text
from a `## Reading` heading to the end of the file is that hand-written
part: `write_markdown` keeps it under the freshly generated tables.

The scripts under `benchmarks/<name>/` import this with
`sys.path.insert(0, <benchmarks>)` (benchmarks are scripts, not a package).
"""

import os

READING = "## Reading"  # the hand-written part of a results file starts here


def write_markdown(path, generated):
    """Writes `generated` to `path`, followed by the `## Reading` section
    the file at `path` already had (if any)."""
    reading = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if READING in old:
            reading = "\n" + old[old.index(READING):]
    with open(path, "w") as f:
        f.write(generated.rstrip("\n") + "\n" + reading)
