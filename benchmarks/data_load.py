"""How long loading FER-2013 takes: the first (parsing) and the second (cached) load.

    python benchmarks/data_load.py [PATH]

Uses a fresh cache folder, so the first load really parses the source.
The target is a second load of the full set under 2 s.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from fer_lib import data


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as cache:
        os.environ["FER_LIB_CACHE"] = cache
        times = []
        for _ in range(2):
            t = time.perf_counter()
            ds = data.load_fer2013(path, progress=False)
            times.append(time.perf_counter() - t)
    print(f"{ds.source} ({ds.release}, {len(ds)} images)")
    print(f"first load {times[0]:.1f} s, second load {times[1]:.2f} s "
          f"({times[0] / times[1]:.0f}x faster; target < 2 s: {'met' if times[1] < 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
