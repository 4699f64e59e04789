"""Locks between processes (and machines sharing a file system).

``RunLock`` lets one run at a time write an output folder: ``make reproduce``
(``rr_utils.pipeline``) and ``make sweep`` (``rr_utils.sweep``) take it
before they read their stamps or write anything.  A second run either waits,
after printing who holds the lock (pid, host, start time, command), or, when
asked not to wait, raises ``LockBusy`` with that message.

The lock is ``filelock.FileLock``: on Linux and macOS an ``flock`` on
``<folder>/.<name>.lock``, which the operating system releases when the
holding process ends, however it ends (a crash, ``kill -9``, a lost node on
NFSv4).  So a killed run never blocks the next one.  Beside the lock file the
holder keeps ``<lock>.owner.json`` (who it is) and deletes it on a clean
release; a run that acquires the lock and still finds that file knows the
previous holder died without releasing it, says so, and takes over.  The
lock file itself stays in place (removing it would let a waiter and a newcomer
lock two different inodes).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import filelock

from rr_utils.io import atomic_write_json

__all__ = ["LockBusy", "RunLock", "acquire_or_report", "describe_holder", "no_wait_from_env"]


class LockBusy(RuntimeError):
    """Another run holds the lock and the caller asked not to wait."""


def no_wait_from_env() -> bool:
    """``RR_NO_WAIT=1`` (or true/yes) asks runs not to wait for a busy lock."""
    return os.environ.get("RR_NO_WAIT", "").strip().lower() in ("1", "true", "yes")


def describe_holder(info: dict | None) -> str:
    """One line naming a holder from its owner record."""
    if not info:
        return "holder unknown (it has just started, or it is not one of ours)"
    alive = ""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        alive = "" if _pid_alive(info["pid"]) else ", no longer running"
    return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
            f" ({info.get('command', '?')}){alive}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """An exclusive lock on ``path`` with an owner record, for one run at a time.

    ``what`` names the guarded thing in messages ("make reproduce on results/"),
    ``hint`` says what a waiting user can do.  ``say`` prints the messages
    (stderr by default).  Use as a context manager
    or with ``acquire`` / ``release``.
    """

    def __init__(self, path: str | os.PathLike, what: str, say: Callable[[str], None] | None = None,
                 hint: str = "Ctrl-C to stop; --no-wait or RR_NO_WAIT=1 to exit at once instead"):
        self.path = Path(path)
        self.hint = hint
        self.owner_path = self.path.with_name(self.path.name + ".owner.json")
        self.what = what
        self.say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # thread_local=False: a sweep's client may release from another thread than the one that acquired
        self._lock = filelock.FileLock(str(self.path), thread_local=False)
        self.took_over: dict | None = None  # the owner record of a killed previous holder, if any
        self.waited_s = 0.0

    def holder(self) -> dict | None:
        """The current (or a dead previous) holder's record; None if there is none or it is unreadable."""
        try:
            info = json.loads(self.owner_path.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def _holder_soon(self, within_s: float = 3.0) -> dict | None:
        """The holder's record, giving a holder that has just locked a moment to write it."""
        deadline = time.monotonic() + within_s
        while (info := self.holder()) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return info

    def acquire(self, wait: bool = True, poll_s: float = 0.5) -> "RunLock":
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            msg = f"{self.what}: another run holds the lock {self.path}: {describe_holder(self._holder_soon())}"
            if not wait:
                raise LockBusy(f"{msg}. Not waiting (--no-wait / RR_NO_WAIT=1); try again when it has finished."
                               ) from None
            self.say(f"{msg}. Waiting for it to finish ({self.hint}) ...")
            t0 = time.monotonic()
            self._lock.acquire(poll_interval=poll_s)
            self.waited_s = time.monotonic() - t0
            self.say(f"{self.what}: lock acquired after waiting {self.waited_s:.1f} s")
        try:
            prev = self.holder()
            if prev is not None:  # a clean release deletes the record: its holder died holding the lock
                self.took_over = prev
                self.say(f"{self.what}: the previous run ({describe_holder(prev)}) ended without releasing the "
                         "lock (killed or crashed); taking it over. Its finished work is kept, "
                         "unfinished work is redone.")
            atomic_write_json(self.owner_path, {
                "pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "?",
                "cwd": os.getcwd(),
            })
        except BaseException:
            self._lock.release()
            raise
        return self

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                self.owner_path.unlink()
        finally:
            self._lock.release()

    @property
    def is_locked(self) -> bool:
        return self._lock.is_locked

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def acquire_or_report(lock: "RunLock", wait: bool) -> bool:
    """``lock.acquire(wait)``; False, with the holder printed to stderr, when it is busy (``wait=False``).

    The commands return status 75 (EX_TEMPFAIL: busy, not failed) on False.
    """
    try:
        lock.acquire(wait=wait)
    except LockBusy as exc:
        print(exc, file=sys.stderr, flush=True)
        return False
    return True
