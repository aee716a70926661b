"""The population read column by column: DuckDB scans segmentation's own database (SQLite or PostgreSQL).

Reading a million customer rows through the row-at-a-time driver cost more than everything the
batch computes; DuckDB's sqlite and postgres scanners read them into Arrow columns instead. The
scanners come as PyPI packages (``duckdb-ext-sqlite``, ``duckdb-ext-postgres``) pinned to the
DuckDB they were built for; DuckDB is told where they are and never to fetch an extension itself.

The scan sees what is committed, from a connection of its own: the batch reads before it writes
(on SQLite it holds the write lock, so what is committed is all there is), then applies its own
changes of the figures to the arrays as it writes them.

On SQLite the scan runs in a child process (``python -m services.segmentation.scan``), which
hands the columns back as an Arrow file. DuckDB's scanner carries a SQLite library of its own, and
two SQLite libraries in one process corrupt a database: POSIX locks belong to the process, so when
one library closes the file it drops the other's locks (https://sqlite.org/howtocorrupt.html,
"multiple copies of SQLite linked into the same application"). In one process the service's own
writes failed with "locking protocol" right after a scan.

Label columns (tier, segment, stage, ...) come back as codes into their vocabulary, so that
comparing a million stored labels with the new ones is integer work; the text of a stored label
is decoded only for the customers whose change is announced.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import URL

from services.segmentation import scan
from services.segmentation.assessment import Population
from services.segmentation.scan import LABELS, SCORES

# A stored label that is NULL, and one that is not in the vocabulary (e.g. an older policy's rule).
NULL_CODE = -1
UNKNOWN_CODE = -2


@dataclass
class Loaded:
    """Everyone, in customer-id order: the facts as a Population, the stored labels as codes."""

    ids: pa.Array
    population: Population
    # Codes into the vocabulary the read was given (NULL_CODE, UNKNOWN_CODE); scores as ints, -1 NULL.
    stored: dict[str, np.ndarray]
    # The stored labels' text, decoded only for the customers that need it.
    labels: dict[str, pa.Array]
    dialect: str

    def __len__(self) -> int:
        return len(self.ids)

    def customer_ids(self, indices: np.ndarray) -> list[uuid.UUID]:
        return [uuid.UUID(text) for text in self.ids.take(pa.array(indices, pa.int64())).to_pylist()]

    def label_texts(self, name: str, indices: np.ndarray) -> list[str | None]:
        texts: list[str | None] = self.labels[name].take(pa.array(indices, pa.int64())).to_pylist()
        return texts

    def index_of(self, customer_ids: Sequence[Any]) -> np.ndarray:
        """Each customer's row (-1 for one not in the population)."""
        spelled = pa.array([_spelling(_uuid(cid), self.dialect) for cid in customer_ids], pa.string())
        found = pc.index_in(spelled, value_set=self.ids)
        return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def read_population(url: URL, vocabularies: Mapping[str, Sequence[str]]) -> Loaded:
    """Everyone's facts and stored labels, read by DuckDB from the committed database at ``url``.

    ``vocabularies`` names, for each label column, the values its codes index.
    """
    assert set(vocabularies) == set(LABELS), "a vocabulary for every label column"
    dialect = url.get_backend_name()
    if dialect == "sqlite":
        table = _scan_in_child(url)
    else:
        with connect(url) as connection:
            table = connection.execute(scan.population_query()).fetch_arrow_table()
    # In key order, so that the fit's seeded sample is the same customers whatever order the
    # database keeps its rows in (PostgreSQL moves rows it updates). Lower-case hex, with or
    # without dashes, sorts as the 16 bytes do.
    table = table.take(pc.sort_indices(table["customer_id"]))
    ids = table["customer_id"].combine_chunks()

    def ints(name: str) -> np.ndarray:
        return np.array(table[name].to_numpy(), dtype=np.int64)  # a copy: Arrow's is read-only

    def floats(name: str) -> np.ndarray:
        column = pc.fill_null(table[name].cast(pa.float64()), np.nan)
        return np.array(column.to_numpy(), dtype=np.float64)

    population = Population(
        frequency=ints("frequency"),
        monetary_minor=ints("monetary_minor"),
        lifetime_frequency=ints("lifetime_frequency"),
        first_purchase=floats("first_purchase_at"),
        last_purchase=floats("last_purchase_at"),
        engaged=ints("engaged").astype(bool),
        last_nps=floats("last_nps"),
        signal_points=floats("signal_points"),
        key_account=ints("key_account").astype(bool),
        purchase_days=ints("purchase_days"),
    )
    stored: dict[str, np.ndarray] = {}
    labels: dict[str, pa.Array] = {}
    for name, vocabulary in vocabularies.items():
        column = table[name].combine_chunks()
        labels[name] = column
        stored[name] = codes(column, vocabulary)
    for name in SCORES:
        stored[name] = np.asarray(pc.fill_null(table[name], -1).to_numpy(), dtype=np.int64)
    return Loaded(ids=ids, population=population, stored=stored, labels=labels, dialect=dialect)


def codes(column: pa.Array, vocabulary: Sequence[str]) -> np.ndarray:
    """Each value's place in ``vocabulary``; NULL_CODE for NULL, UNKNOWN_CODE for a value not in it."""
    found = pc.index_in(column, value_set=pa.array(list(vocabulary), pa.string()))
    coded = pc.if_else(pc.is_null(column), NULL_CODE, pc.fill_null(found, UNKNOWN_CODE))
    return np.asarray(coded.to_numpy(zero_copy_only=False), dtype=np.int64)


def _scan_in_child(url: URL) -> pa.Table:
    """The SQLite scan in a child process, its columns handed back in an Arrow file (memory-mapped)."""
    assert url.database, "the columnar read needs a SQLite file, not an in-memory database"
    with tempfile.TemporaryDirectory(prefix="csm-columnar-") as directory:
        target = Path(directory) / "population.arrow"
        subprocess.run(
            [sys.executable, "-m", scan.__name__, url.database, str(target)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with pa.memory_map(str(target)) as source:
            # Read into memory: the file goes with the directory.
            return pa.ipc.open_file(source).read_all().combine_chunks()


def connect(url: URL) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the database at ``url`` attached read-only as ``segmentation``.

    Not for a SQLite file that this process has open through another SQLite library (the module's
    docstring says why).
    """
    if url.get_backend_name() == "sqlite":
        assert url.database, "the columnar read needs a SQLite file, not an in-memory database"
        return scan.attach("sqlite", url.database)
    return scan.attach("postgres", _libpq(url))


def _libpq(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy URL (values quoted as libpq reads them)."""
    parts = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }

    def quoted(value: object) -> str:
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"

    return " ".join(f"{key}={quoted(value)}" for key, value in parts.items() if value is not None)


def _spelling(customer_id: uuid.UUID, dialect: str) -> str:
    """A customer id as DuckDB reads it: SQLAlchemy keeps a UUID as 32 hex digits on SQLite."""
    return customer_id.hex if dialect == "sqlite" else str(customer_id)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
