"""DuckDB's scan of segmentation's own database: the connection and the population query.

It imports DuckDB and Arrow only, so that the child process the SQLite scan runs in (see
``columnar``) starts in a fraction of the time the service's modules take to import.
``python -m services.segmentation.scan DATABASE TARGET`` scans the SQLite file DATABASE and writes
the columns to the Arrow file TARGET.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import duckdb
import pyarrow as pa

SCORES = ("recency_score", "frequency_score", "monetary_score")
# The label columns, read as text (``columnar`` turns them into codes).
LABELS = ("tier", "tier_rule", "rfm_segment", "stage", "risk", "abc_class", "value_group")
_FIGURES = (
    "frequency",
    "monetary_minor",
    "lifetime_frequency",
    "engaged",
    "last_nps",
    "key_account",
    "purchase_days",
)
_TIMES = ("first_purchase_at", "last_purchase_at")


class ScannerMissing(RuntimeError):
    """DuckDB's scanner for the database is not installed (the ``duckdb-ext-*`` packages)."""


def population_query() -> str:
    selected = [
        "CAST(customer_id AS VARCHAR) AS customer_id",
        *(f"CAST({name} AS BIGINT) AS {name}" for name in _FIGURES),
        "CAST(signal_points AS DOUBLE) AS signal_points",
        # Microseconds, exactly, then seconds: as PostgreSQL's EXTRACT(EPOCH ...) gives them.
        *(f"epoch_us({name}) / 1000000.0 AS {name}" for name in _TIMES),
        *(f"CAST({name} AS VARCHAR) AS {name}" for name in LABELS),
        *(f"CAST({name} AS BIGINT) AS {name}" for name in SCORES),
    ]
    return f"SELECT {', '.join(selected)} FROM segmentation.customer_segment"


def attach(kind: str, target: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the database attached read-only as ``segmentation``.

    ``kind`` is "sqlite" (``target``: the file) or "postgres" (``target``: a libpq connection string).
    """
    scanner = f"{kind}_scanner"
    connection = duckdb.connect(
        config={
            # Nothing is fetched from the network: the scanners are the installed packages.
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(_extension_directory()),
        }
    )
    try:
        connection.execute(f"LOAD {scanner}")
    except duckdb.Error as error:
        connection.close()
        raise ScannerMissing(f"DuckDB's {scanner} is not installed: {error}") from error
    # ATTACH takes no parameters: the target is a quoted literal.
    connection.execute(f"ATTACH {_literal(target)} AS segmentation (TYPE {kind}, READ_ONLY)")
    return connection


def _extension_directory() -> Path:
    spec = importlib.util.find_spec("duckdb_ext")
    if spec is None or not spec.submodule_search_locations:
        raise ScannerMissing("the duckdb-ext-sqlite / duckdb-ext-postgres packages are not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "extensions"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scan_to_file(database: str, target: str) -> None:
    with attach("sqlite", database) as connection:
        table = connection.execute(population_query()).fetch_arrow_table()
    with pa.OSFile(target, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


if __name__ == "__main__":
    scan_to_file(sys.argv[1], sys.argv[2])
