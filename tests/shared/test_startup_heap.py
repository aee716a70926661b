"""A service process freezes the heap its first app was built with, once, so that full collections
under load do not walk it; what comes later is collected as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAM = """
import gc, json, sys
from services.customer.app import create_app
from services.customer.settings import CustomerSettings
from shared.settings import CommonSettings

def settings(n):
    return CustomerSettings(
        database_url=f"sqlite+aiosqlite:///{sys.argv[1]}/customer{n}.db",
        common=CommonSettings(env="test", keys_database_url=f"sqlite+aiosqlite:///{sys.argv[1]}/keys{n}.db"),
    )

before = gc.get_freeze_count()
create_app(settings(1))
first = gc.get_freeze_count()
create_app(settings(2))
second = gc.get_freeze_count()
gc.disable()
garbage = [[] for _ in range(1000)]
for item in garbage:
    item.append(item)  # cycles made after the freeze: collectable as ever
del garbage, item
print(json.dumps({"before": before, "first": first, "second": second, "collected": gc.collect()}))
"""


def test_the_first_app_of_a_process_freezes_the_startup_heap_once(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    counts = json.loads(ran.stdout.strip().splitlines()[-1])
    assert counts["before"] == 0
    assert counts["first"] > 10_000, "the modules, models and routes built so far are frozen"
    # Only once: the second app adds nothing (frozen objects may still be freed when nothing refers to them).
    assert counts["second"] <= counts["first"], "only once: later objects stay collectable"
    assert counts["collected"] >= 1000, "cycles made after the freeze are collected"
