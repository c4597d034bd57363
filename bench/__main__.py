"""``make bench``: run every ``bench/bench_*.py`` in its own process (each prints its ratios)."""

import subprocess
import sys
from pathlib import Path


def main() -> int:
    wanted = sys.argv[1:]
    failed = 0
    for script in sorted(Path(__file__).parent.glob("bench_*.py")):
        if wanted and not any(w in script.stem for w in wanted):
            continue
        print(f"\n=== {script.stem} ===", flush=True)
        failed += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
