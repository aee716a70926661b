"""What the benchmarks that serve an app over HTTP share: a server in its own process, the port it
listens on, its CPU so far, and reading of one HTTP/1.1 response on a keep-alive connection."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path


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
