"""What the benchmarks that serve an app over HTTP share: a server in its own process, waiting until it
answers, its CPU so far, raw HTTP/1.1 requests and responses on keep-alive connections, and a client
run in a process of its own (so that it does not share the server's CPU time)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any


def serve(factory: str, port: int, env: dict[str, str], workers: int) -> subprocess.Popen[bytes]:
    """uvicorn serving the app ``factory`` ("module:function") on loopback, with ``env`` set."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--workers",
        str(workers),
        "--timeout-keep-alive",
        "120",
    ]
    return subprocess.Popen(command, env={**os.environ, **env})


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (head and body by its Content-Length) and return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU a process has used so far (Linux's /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_request(path: str, headers: dict[str, str]) -> bytes:
    """A GET of ``path`` on a keep-alive connection to the loopback server."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


async def one_request(port: int, path: str, headers: dict[str, str]) -> tuple[int, float]:
    """A GET on a connection of its own: the status and the seconds it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        writer.write(get_request(path, headers))
        status = await read_response(reader)
        return status, time.perf_counter() - started
    finally:
        writer.close()


async def wait_until_up(port: int, path: str, headers: dict[str, str], timeout: float = 60) -> None:
    """Until a GET of ``path`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = await one_request(port, path, headers)
            if status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise RuntimeError(f"nothing answers on port {port}")


def _run_client(
    client: Callable[..., Coroutine[Any, Any, Any]], kwargs: dict[str, Any], results: Any
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        results.put(("done", asyncio.run(client(**kwargs))))
    except BaseException as error:  # tell the parent, which is waiting on the queue
        results.put(("failed", f"{type(error).__name__}: {error}"))
        raise


def in_client_process(client: Callable[..., Coroutine[Any, Any, Any]], **kwargs: Any) -> Any:
    """``client(**kwargs)`` (a module-level coroutine function) run in a second process; its result."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_run_client, args=(client, kwargs, results))
    process.start()
    outcome, value = results.get()
    process.join()
    if outcome == "failed":
        raise RuntimeError(f"the client process failed: {value}")
    return value
