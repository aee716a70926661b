"""``csm up``: the whole system on embedded defaults, as child processes that die with it.

The broker starts first (unless CSM_KAFKA_BOOTSTRAP names one), then migrations run, then
the four services. An embedded broker that dies is started again on its port, and the
services recover from its empty log by themselves (see ``shared.bus``); a service that dies
stops everything. Ctrl-C or SIGTERM stops the services, then the broker. If this process is
killed outright, the kernel kills its children too (PR_SET_PDEATHSIG), as in a crash.

A service whose events several processes consume (``--consumers``, PostgreSQL only) starts the
others itself (``ConsumerProcesses``), and stops if one of them dies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from services.console.settings import ConsoleSettings
from services.registry import SERVICES
from shared import migrations
from shared.auth import mint_token
from shared.broker import EmbeddedBroker, die_with_parent
from shared.roles import Role
from shared.settings import CommonSettings


def migrate_all() -> None:
    async def run() -> None:
        for entry in SERVICES.values():
            await migrations.upgrade(entry.name, entry.settings().database_url)

    asyncio.run(run())


class System:
    def __init__(
        self,
        *,
        var_dir: Path,
        kafka_port: int,
        say: Callable[[str], None],
        consumer_processes: dict[str, int] | None = None,
    ) -> None:
        self.var_dir = var_dir
        self.consumer_processes = consumer_processes or {}
        self.kafka_port = kafka_port
        self.say = say
        self.broker: EmbeddedBroker | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()

    def run(self) -> int:
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        self.var_dir.mkdir(parents=True, exist_ok=True)
        try:
            # The children inherit this process's environment, settings included.
            if "CSM_KAFKA_BOOTSTRAP" not in os.environ:
                self.broker = EmbeddedBroker(self.kafka_port, log_file=self.var_dir / "broker.log")
                self.broker.start()
                os.environ["CSM_KAFKA_BOOTSTRAP"] = self.broker.bootstrap
                self.say(f"broker: tansu (in memory) on {self.broker.bootstrap}")
            else:
                self.say(f"broker: {os.environ['CSM_KAFKA_BOOTSTRAP']} (from CSM_KAFKA_BOOTSTRAP)")
            migrate_all()
            self.say("databases: migrated")
            # The complaints mailbox listens for mail on 2525 unless told otherwise.
            os.environ.setdefault("CSM_COMPLAINTS_MAIL_LISTEN_PORT", "2525")
            for name in SERVICES:
                self.children[name] = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "serve", name],
                    stdin=subprocess.DEVNULL,
                    # Not in our process group: Ctrl-C reaches only us, and we stop the services
                    # before the broker they drain into.
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            ports = {name: entry.settings().port for name, entry in SERVICES.items()}
            self.children["console"] = self._start_console()
            consumers = {
                (name, consumer_port(port, number)): name
                for name, port in ports.items()
                for number in range(1, self.consumer_processes.get(name, 1))
            }
            if not self._wait_ready({**ports, "console": ConsoleSettings().port}, consumers):
                return 1
            self._banner(ports, CommonSettings())
            while not self.stopping.wait(0.5):
                self._restart_a_dead_broker()
                for name, child in self.children.items():
                    if child.poll() is not None:
                        self.say(f"{name} exited with status {child.returncode}; stopping everything")
                        return 1
            return 0
        finally:
            self.stop()

    def _start_console(self) -> subprocess.Popen[bytes]:
        """The console, told where the services answer (unless CSM_CONSOLE_<SERVICE>_URL says)."""
        urls = {}
        for name, entry in SERVICES.items():
            settings = entry.settings()
            urls[f"CSM_CONSOLE_{name.upper()}_URL"] = f"http://{settings.host}:{settings.port}"
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "console"],
            env={**urls, **os.environ},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def _restart_a_dead_broker(self) -> None:
        broker = self.broker
        if broker is None or broker.process is None or broker.process.poll() is None:
            return
        self.say(f"broker: exited with status {broker.process.returncode}; starting it again")
        while not self.stopping.is_set():
            try:
                broker.start()
            except RuntimeError as error:
                self.say(f"broker: could not start ({error}); retrying")
                self.stopping.wait(1.0)
                continue
            self.say(f"broker: running again on {broker.bootstrap}, with an empty log")
            return

    def _wait_ready(
        self,
        ports: dict[str, int],
        consumers: dict[tuple[str, int], str] | None = None,
        timeout: float = 90.0,
    ) -> bool:
        """Wait until every child answers ready, and every extra consumer process (by the child that
        started it) on its port."""
        deadline = time.monotonic() + timeout
        pending: dict[tuple[str, int], str] = {(name, port): name for name, port in ports.items()}
        pending |= consumers or {}
        while pending:
            if self.stopping.is_set():
                return False
            for (name, port), parent in list(pending.items()):
                if self.children[parent].poll() is not None:
                    self.say(f"{parent} exited with status {self.children[parent].returncode} while starting")
                    return False
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                        del pending[(name, port)]
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                self.say(f"not ready after {timeout:.0f}s: {', '.join(f'{n} ({p})' for n, p in pending)}")
                return False
            time.sleep(0.2)
        return True

    def _banner(self, ports: dict[str, int], common: CommonSettings) -> None:
        token = mint_token(common, subject="local-admin", role=Role.admin, name="Local administrator")
        console = ConsoleSettings()
        lines = ["", f"csm is up. The console: http://{console.host}:{console.port}/ (sign in there)", ""]
        lines += ["API docs:"]
        lines += [f"  {name:<13} http://127.0.0.1:{port}/docs" for name, port in ports.items()]
        lines += [
            f"  {name}: {processes} consumer processes, the others' readiness on "
            + ", ".join(str(consumer_port(ports[name], number)) for number in range(1, processes))
            for name, processes in self.consumer_processes.items()
            if processes > 1
        ]
        lines += [f"Complaints by e-mail: SMTP on 127.0.0.1:{os.environ['CSM_COMPLAINTS_MAIL_LISTEN_PORT']}"]
        lines += ["", "Admin token (valid 12 hours; Authorize in the docs with it):", f"  {token}", ""]
        lines += [
            "Other roles: csm token --role agent|supervisor|manager|admin|service",
            "Ctrl-C stops everything.",
            "",
        ]
        self.say("\n".join(lines))

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def consumer_port(port: int, number: int) -> int:
    """Where the service's ``number``-th extra consumer process answers health, readiness, metrics."""
    return port + 100 * number


class ConsumerProcesses:
    """The extra consumer processes of one service (``csm serve --consumers``), children of its first.

    Each runs ``csm serve <service> --consumer-only`` on the same host and its own port
    (``consumer_port``), and dies with this process. If one exits while the service runs, the service
    stops too (``failed`` says so):
    its partitions would go to the others, but a process that runs fewer consumers than it was told
    to is better noticed than silently slower.
    """

    def __init__(self, service: str, *, host: str, port: int, count: int, say: Callable[[str], None]) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.count = count
        self.say = say
        self.children: list[subprocess.Popen[bytes]] = []
        self.failed = False
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self._handlers: dict[signal.Signals, Any] = {}

    def __enter__(self) -> ConsumerProcesses:
        for number in range(1, self.count + 1):
            self.children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "services.cli",
                        "serve",
                        self.service,
                        "--consumer-only",
                        *("--host", self.host),
                        *("--port", str(consumer_port(self.port, number))),
                    ],
                    stdin=subprocess.DEVNULL,
                    # Stopped by us, after the first process (a terminal's Ctrl-C reaches only it).
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            )
        if self.children:
            # uvicorn raises the signal that stopped it again once it has; it must not kill this
            # process before the consumer processes are stopped in order, so it is heard and let be.
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                self._handlers[stop_signal] = signal.signal(stop_signal, lambda *_: None)
            self._watch = threading.Thread(target=self._watch_children, daemon=True)
            self._watch.start()
        return self

    def _watch_children(self) -> None:
        while not self._stopping.wait(0.5):
            for child in self.children:
                if child.poll() is not None:
                    self.say(
                        f"{self.service}: consumer process {child.pid} exited with status "
                        f"{child.returncode}; stopping the service"
                    )
                    self.failed = True
                    # uvicorn stops on SIGTERM as on Ctrl-C: the service shuts down in order.
                    os.kill(os.getpid(), signal.SIGTERM)
                    return

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._watch is not None:
            self._watch.join()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for stop_signal, handler in self._handlers.items():
            signal.signal(stop_signal, handler)
