"""make bench: the benchmark on the bundled sample (a few minutes), then BENCHMARKS.md from every results file.

The 1.1M-headline run takes long and needs the corpus; BENCHMARKS.md gives its command.
On the shared 2-core machine run it as `flock /tmp/semsearch-heavy.lock make bench`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEMSEARCH = Path(sys.executable).parent / "semsearch"


def main() -> int:
    subprocess.run([str(SEMSEARCH), "bench", "abcnews-sample", "--grid", "sample", "--results", str(HERE / "results" / "abcnews-sample.json")],
                   check=True, cwd=HERE.parent)
    return subprocess.run([sys.executable, str(HERE / "report.py")], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
