"""One writer per output directory: an exclusive ``fcntl`` lock on ``OUT/.hivemind.lock``.

Two cluster jobs pointed at the same ``--out`` would otherwise interleave their files.
Every command that writes into a directory takes the lock first; a second writer is
refused at once, with the holder's process id. The kernel drops a ``flock`` when its
process dies, however it dies, so the lock of a dead process is simply taken over: the
lock file itself stays (removing it would let two processes lock two different files).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from hivemind.errors import InputError

LOCK_NAME = ".hivemind.lock"


class DirectoryBusy(InputError, RuntimeError):
    """Another live process holds the directory's lock."""

    def __init__(self, directory: Path, pid: int | None):
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"{directory}: another hivemind command ({holder}) is writing into this directory; "
            "wait for it to finish or choose another --out"
        )
        self.pid = pid


def hidden(name: str) -> bool:
    """Files of hivemind's own bookkeeping, which do not make a directory 'not empty'."""
    return name == LOCK_NAME


@contextlib.contextmanager
def locked(directory: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if needed) for the ``with`` block.

    Raises
    ------
    DirectoryBusy
        At once, if another process holds it.
    OutError
        If the directory or its lock file cannot be created.
    """
    directory = Path(directory)
    path = directory / LOCK_NAME
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise _unwritable(directory, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryBusy(directory, _holder(fd)) from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise _unwritable(directory, e) from None
            # A filesystem without locks (some network mounts): run unguarded rather than not at all.
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            raise _unwritable(directory, e) from None
        yield directory
    finally:
        os.close(fd)  # releases the lock


def _unwritable(directory: Path, error: OSError) -> OutError:
    return OutError(f"{directory}: --out cannot be written: {error.strerror or error}")


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


class OutError(InputError, ValueError):
    """An output directory that may not be written as asked."""


def check_out(out: Path, resume: bool, force: bool) -> bool:
    """The --resume/--force rules every writing command shares; True if ``out`` already holds files."""
    if resume and force:
        raise OutError("--resume and --force contradict each other: pick one")
    busy = out.is_dir() and any(not hidden(p.name) for p in out.iterdir())
    if busy and not resume and not force:
        raise OutError(f"{out}: --out is not empty; pass --resume to continue the run there, or --force to overwrite it")
    return busy


def manifest_of(out: Path) -> dict:
    """``out/manifest.json``, or {} where there is none (or it cannot be read)."""
    import json

    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


# What resuming into a directory means, decided once for run, live and sweep.
MODES = ("fresh", "resume", "restart", "complete")


def resume_mode(out: Path, fingerprint: str, resume: bool, force: bool, resumable: bool) -> str:
    """'fresh', 'resume' (``resumable``: a checkpoint or transcript is there), 'restart' or 'complete'.

    Job scripts that may be requeued pass --resume every time, so --resume with nothing to
    resume starts afresh ('restart'), unless ``out`` holds a finished run of another
    scenario (another ``fingerprint``), which is refused; a finished run of this one is 'complete'.
    """
    check_out(out, resume, force)
    if not resume:
        return "fresh"
    if resumable:
        return "resume"
    meta = manifest_of(out)
    if meta.get("status") == "complete":
        if meta.get("scenario_fingerprint") == fingerprint:
            return "complete"
        raise OutError(
            f"{out}: holds a finished run of another scenario (or other --set values); "
            "choose another --out, or --force to overwrite it"
        )
    return "restart"
