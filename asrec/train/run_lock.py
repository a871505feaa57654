"""One ``asrec train`` at a time per run folder.

A run holds an exclusive ``fcntl.flock`` on ``<run folder>/run.lock`` from before it writes
its first file until it ends. The operating system releases the lock when the process ends,
however it ends (a crash, ``kill -9``, a lost node), so a stopped run never leaves its folder
locked: the file stays, the lock does not. The file is never removed, on purpose: removing a
lock file lets a process that opened the old file and one that creates a new one both hold
"the" lock.

Where ``fcntl`` does not exist (Windows), runs are not locked (``RunLock.supported`` False).
"""

import contextlib
import errno
import os
from typing import Optional

from ..errors import CommandError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_FILE = "run.lock"


class RunFolderBusy(CommandError):
    """Another live process holds the run folder's lock (``asrec`` prints it as one line, exit 1)."""


def _holder(path: str) -> str:
    """What the lock file says about its holder, for the message ("process 123 on host")."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        text = ""
    return text or "another process"


class RunLock:
    """An exclusive lock on a run folder, held until ``release`` or the end of the process."""

    supported = fcntl is not None

    def __init__(self, folder: str, what: str = "--output"):
        """Take the lock on ``folder`` (which must exist) or raise ``RunFolderBusy`` naming
        ``what`` (the flag that chose the folder) and the process that holds it."""
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd: Optional[int] = None
        if fcntl is None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunFolderBusy(f"{what}: {folder} is in use by a running asrec train ({_holder(self.path)}); "
                                    "wait for it to end or choose another folder") from None
            raise
        self._fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"process {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else 'this host'}\n"
                 .encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def reading(folder: str, what: str):
    """Within the block, no run may write ``folder``: a shared lock, taken without writing
    anything there (a folder without a lock file has no live locked run, and a run that starts
    there meanwhile is refused by its own exclusive lock only if the file exists, so the
    block is short: copying the run a ``--resume RUN --output NEW`` continues). Raises
    ``RunFolderBusy`` naming ``what`` if a live run holds the folder."""
    path = os.path.join(folder, LOCK_FILE)
    fd = None
    if fcntl is not None and os.path.isfile(path):
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as error:
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunFolderBusy(f"{what}: {folder} is in use by a running asrec train "
                                        f"({_holder(path)}); wait for it to end") from None
                raise
        yield
    finally:
        if fd is not None:
            os.close(fd)
