"""``gpg --decrypt`` as one stage of the streaming pass, for ``backup_*.tar.gz.gpg``.

Why apart: gpg is the one child process the pass runs, and the one place a secret is handed
over. It gets the passphrase through a pipe of its own (never argv or the environment), a
minimal environment (``child_env``), a throwaway home and no agent, so nothing of the caller's
keyring or secrets reaches it and nothing of it outlives the pass. Its stderr is read back with
the passphrase masked in case gpg echoes what it was given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from grimoire_drill.archive.locate import FIX_RECOPY
from grimoire_drill.archive.stream import CHUNK, HashingReader, describe
from grimoire_drill.archive.writer import write_all
from grimoire_drill.child_env import child_env
from grimoire_drill.errors import DrillFailure, GrimoireDrillError, HarnessError

GPG_EXIT_TIMEOUT_SECONDS = 60
FIX_PASSPHRASE = (
    "check the passphrase (--passphrase-file or GRIMOIRE_DRILL_PASSPHRASE); "
    "if it is right, the archive is damaged: re-copy it"
)


class GpgDecryption:
    """``gpg --decrypt`` as a pipe stage: a thread feeds it the (hashed) archive, we read plaintext.

    The passphrase goes through its own pipe (``--passphrase-fd``), never argv or the
    environment (gpg's is ``child_env``: none of ours, so not GRIMOIRE_DRILL_PASSPHRASE either);
    gpg runs with a throwaway home and ``--no-autostart`` so no agent is left behind.
    """

    def __init__(self, source: HashingReader, passphrase: str, archive: Path | str, scratch: Path,
                 run_tags: dict[str, str]):
        gpg = shutil.which("gpg")
        if gpg is None:
            raise HarnessError("gpg is not installed, so the encrypted archive cannot be read",
                               where=str(archive), fix="install GnuPG (apt-get install gnupg)")
        self._source = source
        self._archive = archive
        self._secret = passphrase
        self._home = tempfile.mkdtemp(prefix=".gnupg-", dir=scratch)
        self._stderr = tempfile.TemporaryFile(dir=self._home)
        self._feed_error: BaseException | None = None
        read_fd, write_fd = os.pipe()
        try:
            write_all(write_fd, passphrase.encode("utf-8") + b"\n")
        finally:
            os.close(write_fd)
        argv = [gpg, "--batch", "--quiet", "--no-tty", "--no-autostart", "--no-permission-warning",
                "--homedir", self._home, "--pinentry-mode", "loopback",
                "--passphrase-fd", str(read_fd), "--decrypt"]
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=self._stderr, pass_fds=(read_fd,),
                                          env=child_env(run_tags))
        except OSError as exc:
            self._stderr.close()
            shutil.rmtree(self._home, ignore_errors=True)
            raise HarnessError(f"gpg could not be started: {exc.strerror or exc}", where=str(archive),
                               fix="check the GnuPG installation") from exc
        finally:
            os.close(read_fd)
        self.stdout = self._proc.stdout
        self._feeder = threading.Thread(target=self._feed, name="gpg-feed", daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        stdin = self._proc.stdin
        try:
            while chunk := self._source.read(CHUNK):
                stdin.write(chunk)
        except (BrokenPipeError, ValueError):
            pass  # gpg stopped reading; its exit status says why
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self._feed_error = exc
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def finish(self, drain_limit: int) -> None:
        """Let gpg run to its end (reading at most ``drain_limit`` more bytes), then judge its exit.

        If gpg still has output past ``drain_limit`` (limits.max_trailing_bytes: a bomb behind a
        corrupt start), it is stopped instead and not judged: the caller's own failure stands.
        """
        remaining = drain_limit
        while remaining > 0 and (chunk := self.stdout.read(min(CHUNK, remaining))):
            remaining -= len(chunk)
        if self.stdout.read(1):
            self._proc.kill()
            self._proc.wait()
            self.stdout.close()
            self._feeder.join()
            return
        self.stdout.close()
        try:
            returncode = self._proc.wait(timeout=GPG_EXIT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            returncode = self._proc.wait()
        self._feeder.join()
        if isinstance(self._feed_error, GrimoireDrillError):  # the reader's own verdict (a store's checksum)
            raise self._feed_error
        if self._feed_error is not None:
            raise DrillFailure(describe(self._feed_error), where=str(self._archive), fix=FIX_RECOPY)
        if returncode != 0:
            raise DrillFailure(f"gpg could not decrypt the archive: {self._reason()}",
                               where=str(self._archive), fix=FIX_PASSPHRASE)

    def _reason(self) -> str:
        self._stderr.seek(0)
        lines = [line.strip() for line in
                 self._stderr.read().decode("utf-8", "replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else "gpg failed without a message"
        if self._secret:
            reason = reason.replace(self._secret, "***")
        return reason.removeprefix("gpg: ")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self.stdout is not None and not self.stdout.closed:
            self.stdout.close()
        self._feeder.join()
        self._stderr.close()
        shutil.rmtree(self._home, ignore_errors=True)
