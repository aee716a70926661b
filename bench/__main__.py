"""``python -m bench NAME [ARGS]`` runs ``bench/NAME.py``; with no name, lists what there is.

Every benchmark module has ``main(argv: list[str]) -> int`` and reports its figures with
``bench.report`` beside a baseline it measured in the same run.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

HERE = Path(__file__).parent
SKIP = {"__init__", "__main__", "report"}


def available() -> list[str]:
    return sorted(
        path.stem for path in HERE.glob("*.py") if path.stem not in SKIP and not path.stem.startswith("_")
    )


def main() -> int:
    names = available()
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print("usage: python -m bench NAME [ARGS]   (make bench NAME=... ARGS=...)")
        print("benchmarks:", ", ".join(names) or "none yet")
        return 0
    name = sys.argv[1]
    if name not in names:
        print(f"no benchmark {name!r}; there are: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(sys.argv[2:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
