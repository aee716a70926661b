"""A real IMAP server for tests: Debian's Dovecot, started unprivileged on a loopback port.

Dovecot runs as the current user, or as ``nobody`` when the tests run as root (it will not run its
login processes as root). One user, ``csm``, with a password; mail in Maildir under a temporary
directory. Without the ``dovecot`` binary (package ``dovecot-imapd``) the tests that need it skip.
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from shared.broker import free_port

USER = "csm"
PASSWORD = "mailbox-secret"


def available() -> bool:
    return shutil.which("dovecot") is not None


class Dovecot:
    def __init__(self) -> None:
        # Its own directory under the system's temporary one: pytest's are private to this user,
        # and when run as root Dovecot's processes are ``nobody``, who must reach it.
        self.directory = Path(tempfile.mkdtemp(prefix="csm-dovecot-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            self.user, self.group = "nobody", grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        else:
            self.user, self.group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name

    def _config(self) -> str:
        d = self.directory
        return f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {self.user}
default_internal_user = {self.user}
default_internal_group = {self.group}
mail_location = maildir:{d}/mail/%u
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={self.user} gid={self.group} home={d}/mail/%u
}}
"""

    def start(self) -> Dovecot:
        d = self.directory
        for folder in ("run", "state", "mail"):
            (d / folder).mkdir(parents=True, exist_ok=True)
        (d / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        (d / "dovecot.conf").write_text(self._config())
        if os.geteuid() == 0:
            d.chmod(0o755)
            for path in [d, *d.rglob("*")]:
                shutil.chown(path, self.user, self.group)
        self.process = subprocess.Popen(
            ["dovecot", "-F", "-c", str(d / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "dovecot.err").open("wb"),
            user=self.user if os.geteuid() == 0 else None,
            group=self.group if os.geteuid() == 0 else None,
            extra_groups=[] if os.geteuid() == 0 else None,
        )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                assert time.monotonic() < deadline, self.log()
                time.sleep(0.05)

    def log(self) -> str:
        found = [self.directory / name for name in ("dovecot.err", "dovecot.log")]
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in found if path.exists())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
