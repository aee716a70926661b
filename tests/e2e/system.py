"""``csm up`` as a child process with its own ports, databases and broker, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from services.registry import SERVICES
from shared.broker import free_port
from shared.db import create_engine


class System:
    """``csm up`` as a child process with its own ports, databases and broker."""

    def __init__(self, tmp: Path, urls: dict[str, str]) -> None:
        self.tmp = tmp
        self.ports = {name: free_port() for name in SERVICES}
        self.kafka_port = free_port()
        # The complaints mailbox's SMTP listener, on a port of this system's own.
        self.mail_port = free_port()
        self.console_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CSM_")},
            "CSM_ENV": "test",
            "CSM_RATE_LIMITS_ENABLED": "false",
            "CSM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "CSM_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "CSM_COMPLAINTS_MAIL_LISTEN_PORT": str(self.mail_port),
        }
        self.env["CSM_CONSOLE_PORT"] = str(self.console_port)
        for name in SERVICES:
            self.env[f"CSM_{name.upper()}_PORT"] = str(self.ports[name])
            self.env[f"CSM_{name.upper()}_DATABASE_URL"] = urls[name]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.tmp / f"up-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "up",
                "--kafka-port",
                str(self.kafka_port),
                "--var-dir",
                str(self.tmp / "var"),
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    async def wait_ready(self, timeout: float = 120) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            for port in [*self.ports.values(), self.console_port]:
                while True:
                    assert self.process is not None and self.process.poll() is None, self.log_tail()
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert asyncio.get_running_loop().time() < deadline, self.log_tail()
                    await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the supervisor; the kernel kills the broker and the services with it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_tail(self) -> str:
        logs = sorted(self.tmp.glob("up-*.log"))
        return logs[-1].read_text(errors="replace")[-3000:] if logs else "(no log)"


async def count(url: str, query: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(sa.text(query)) or 0)
    finally:
        await engine.dispose()


def kill_broker(port: int) -> int:
    """SIGKILL the embedded broker listening on ``port`` (and nothing else); returns its pid."""
    listener = f"tcp://127.0.0.1:{port}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"broker" in arguments and listener in arguments:
            os.kill(int(entry.name), signal.SIGKILL)
            return int(entry.name)
    raise AssertionError(f"no broker listens on {port}")
