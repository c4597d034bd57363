"""``make bench``: run every ``bench/bench_*.py`` in turn (each prints its own ratios)."""

import runpy
import sys
from pathlib import Path


def main() -> int:
    wanted = sys.argv[1:]
    scripts = sorted(Path(__file__).parent.glob("bench_*.py"))
    for script in scripts:
        if wanted and not any(w in script.stem for w in wanted):
            continue
        print(f"\n=== {script.stem} ===", flush=True)
        runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
