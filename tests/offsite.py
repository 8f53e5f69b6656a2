"""Real off-site stores on loopback for the tests: moto's S3 server, OpenSSH's sshd, a proxy that cuts.

No mock of what is tested: the drill talks HTTP to a real S3 API server and SSH to a real sshd,
and a transfer is broken by closing real TCP connections mid-stream.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGED_EXPECTATIONS = Path(__file__).resolve().parents[1] / "drills" / "expectations.toml"


def quick_retry_expectations(folder: Path) -> Path:
    """The packaged expectations with 2 re-reads that wait 10 ms, not 5 that wait seconds."""
    text = PACKAGED_EXPECTATIONS.read_text()
    for old, new in (("remote_retry_wait_s = 1.0", "remote_retry_wait_s = 0.01"),
                     ("remote_retries = 5 ", "remote_retries = 2 "),
                     ("remote_timeout_s = 60.0", "remote_timeout_s = 10.0")):
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "expectations.toml"
    path.write_text(text)
    return path


class CutProxy:
    """A TCP proxy to ``upstream`` that closes the connection once ``cut_after`` bytes went to the client.

    ``then``: ``"resume"`` lets every later connection through untouched (a blip); ``"down"`` closes
    every later connection at once (the store went away). ``cuts`` counts the cuts made.
    """

    def __init__(self, upstream: tuple[str, int], cut_after: int, then: str):
        self.upstream = upstream
        self.cut_after = cut_after
        self.then = then
        self.cuts = 0
        self.bytes_down = 0   # bytes passed on to the client, all connections together
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                cut_done = self.cuts > 0
            if cut_done and self.then == "down":
                client.close()
                continue
            threading.Thread(target=self._serve, args=(client, not cut_done), daemon=True).start()

    def _serve(self, client: socket.socket, may_cut: bool) -> None:
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        def pump_up() -> None:
            try:
                while data := client.recv(65536):
                    server.sendall(data)
            except OSError:
                pass
            finally:
                _close(server)
        threading.Thread(target=pump_up, daemon=True).start()
        sent = 0
        try:
            while data := server.recv(65536):
                if may_cut and sent + len(data) > self.cut_after:
                    with self._lock:
                        first = self.cuts == 0
                        self.cuts += 1
                    if first or self.then == "down":
                        client.sendall(data[: max(0, self.cut_after - sent)])
                        with self._lock:
                            self.bytes_down += max(0, self.cut_after - sent)
                        break
                client.sendall(data)
                sent += len(data)
                with self._lock:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def close(self) -> None:
        self._stopped.set()
        self._server.close()


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# --------------------------------------------------------------------------- sshd


@dataclass
class Sshd:
    """A throwaway OpenSSH server on a loopback port, and HOMEs whose ~/.ssh let the drill in (or not)."""

    port: int
    folder: Path
    user: str
    process: subprocess.Popen
    host_key: str        # "ssh-ed25519 AAAA…" of the server
    user_key: Path       # the key authorized_keys accepts
    other_key: Path      # a key the server does not accept

    def home(self, name: str, *, port: int | None = None, key: Path | None = None, known: bool = True) -> Path:
        """A HOME with ~/.ssh/config naming ``key`` (IdentityFile) and known_hosts holding the host key."""
        home = self.folder / name
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(parents=True)
        if known:
            (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{port or self.port} {self.host_key}\n")
        (ssh_dir / "config").write_text(f"Host 127.0.0.1\n  IdentityFile {key or self.user_key}\n"
                                        "  IdentitiesOnly yes\n")
        return home

    def env(self, home: Path) -> dict[str, str]:
        """The drill's environment: that HOME, and no agent of ours."""
        return {"HOME": str(home), "SSH_AUTH_SOCK": ""}

    def url(self, path: str, port: int | None = None) -> str:
        return f"sftp://{self.user}@127.0.0.1:{port or self.port}{path}"

    def stop(self) -> None:
        """End the sshd this test started, and its per-connection children (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_sshd(folder: Path) -> Sshd:
    """sshd -D -e -f its own config, host and user keys made here; skips when OpenSSH is not installed."""
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
    keygen = shutil.which("ssh-keygen")
    if sshd is None or keygen is None:
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server; .ci/run does)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder, as its package makes
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key", "other_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no", "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp",
        "LogLevel ERROR", ""]))
    process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=open(folder / "sshd.log", "wb"), start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.05)
    host_key = " ".join((folder / "host_key.pub").read_text().split()[:2])
    return Sshd(port=port, folder=folder, user=getpass.getuser(), process=process, host_key=host_key,
                user_key=folder / "user_key", other_key=folder / "other_key")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
