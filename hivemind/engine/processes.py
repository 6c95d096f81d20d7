"""One run across several processes: ``jax.distributed`` with gloo collectives on CPU.

Every process owns its local devices; once connected, ``jax.devices()`` lists the
devices of all of them, and ``run.shard`` (``"seeds"`` or ``"agents"``) spreads the
run over the lot exactly as it spreads it over the devices of one process. Every
process computes; only process 0 writes. Records and checkpoints reach process 0
through an all-gather that every process joins, since a collective must be entered
by all of them, in the same order.

A process that dies breaks the gloo connections of the others: their next collective
fails at once with "connection reset", which the engine turns into ``PeerLost``. A
process that never arrives (or a coordinator nobody can reach) would make JAX abort
the others with a fatal log after its own timeout; ``initialize`` probes the
coordinator first and, behind that, keeps a watchdog that ends the process with one
line instead.

A process that hangs (stopped, swapped out, cut off) breaks nothing: the others wait in
their next collective, and gloo has no timeout there. JAX's own heartbeats notice, then
abort every process with a page of log, and the callback that would let us speak first
cannot be given from Python. So ``watch`` keeps heartbeats of our own in the
coordination service's key-value store, and tells the caller, in one line, which
process fell silent; JAX's deadline is set behind ours.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time

import jax
import numpy as np

from hivemind.errors import InputError

# Seconds to wait for the coordinator and for every process to connect.
DEFAULT_TIMEOUT_S = 60.0

# What ``hivemind run`` exits with when the processes cannot start together.
EXIT_SETUP = 2


class ProcessesError(InputError, ValueError):
    """A multi-process setup that cannot work: a bad address, id or count, or a coordinator out of reach."""


def first_line(error: Exception) -> str:
    """The first non-empty line of ``error``'s message (a collective's error runs to pages)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class PeerLost(RuntimeError):
    """A collective failed because another process of the run stopped; ``step`` is the kept checkpoint's (or None)."""

    def __init__(self, message: str, step: int | None):
        super().__init__(message)
        self.step = step


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port), with a one-line error for anything else."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ProcessesError(f"--coordinator must be HOST:PORT (a port in 1..65535) or auto, got {address!r}")
    return host.strip("[]"), int(port)


# The longest --timeout: JAX takes its deadlines as C ints of seconds, and a day is plenty.
MAX_TIMEOUT_S = 86400.0


def check_setup(
    coordinator: str, num_processes: int | None, process_id: int | None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> None:
    """Every check that needs no network: the address, the count, the id and the timeout; one line each."""
    if num_processes is not None and num_processes < 1:
        raise ProcessesError(f"--num-processes must be at least 1, got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ProcessesError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    if coordinator != "auto":
        parse_address(coordinator)
        if num_processes is None or process_id is None:
            raise ProcessesError("--coordinator HOST:PORT needs --num-processes N and --process-id I")
    if not (timeout_s > 0 and timeout_s <= MAX_TIMEOUT_S):  # also refuses NaN
        raise ProcessesError(f"--timeout must be a number of seconds in (0, {MAX_TIMEOUT_S:g}], got {timeout_s:g}")


def _wait_reachable(host: str, port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout_s)):
                return
        except OSError as e:
            last = e
            time.sleep(0.2)
    reason = getattr(last, "strerror", None) or str(last)
    raise ProcessesError(f"cannot reach the coordinator {host}:{port} within {timeout_s:g} s ({reason}); is process 0 running?")


def _check_bindable(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as e:
            raise ProcessesError(f"process 0 cannot listen on port {port}: {e.strerror or e}") from None


def _give_up(message: str) -> None:
    """Runs on the watchdog's thread: JAX would abort with a page of log, so end with one line first."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(EXIT_SETUP)


def initialize(
    coordinator: str = "auto",
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Join a multi-process run: gloo collectives on CPU, then ``jax.distributed.initialize``.

    ``coordinator`` is ``HOST:PORT`` of process 0 (which listens there), or ``"auto"``
    to let JAX read the cluster's environment (SLURM, Open MPI, Kubernetes and the
    others it detects). Must run before anything touches a JAX device. If the
    processes have not all connected within ``timeout_s`` this process ends with one
    line on stderr and exit status 2 (JAX would otherwise abort it).
    """
    check_setup(coordinator, num_processes, process_id, timeout_s)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    kwargs: dict = {}
    if coordinator != "auto":
        host, port = parse_address(coordinator)
        if process_id == 0:
            _check_bindable(port)
        else:
            _wait_reachable(host, port, timeout_s)
        kwargs = {"coordinator_address": f"{host}:{port}", "num_processes": num_processes, "process_id": process_id}
    elif num_processes is not None or process_id is not None:
        kwargs = {"num_processes": num_processes, "process_id": process_id}
    where = "the cluster's coordinator" if coordinator == "auto" else coordinator
    watchdog = threading.Timer(
        timeout_s,
        _give_up,
        (f"not every process connected to {where} within {timeout_s:g} s; start all {num_processes or 'the'} processes",),
    )
    watchdog.daemon = True
    watchdog.start()
    try:
        _connect(kwargs, timeout_s)
    finally:
        watchdog.cancel()


def heartbeat_deadline(timeout_s: float) -> int:
    """JAX's heartbeat timeout: well behind ``watch``'s, which must speak first."""
    return int(2 * timeout_s) + 30


def _connect(kwargs: dict, timeout_s: float) -> None:
    try:
        jax.distributed.initialize(
            **kwargs,
            # JAX's own deadlines sit behind our watchdogs', so that ours speak first.
            initialization_timeout=int(timeout_s) + 30,
            heartbeat_timeout_seconds=heartbeat_deadline(timeout_s),
            # At exit every process waits for the others; process 0 may still be writing
            # figures of a large run, so wait long rather than abort it.
            shutdown_timeout_seconds=3600,
        )
    except (ValueError, RuntimeError) as e:  # e.g. --coordinator auto outside a cluster JAX recognises
        lines = [line for line in str(e).splitlines() if line.strip()]
        hint = "" if "coordinator_address" in kwargs else "; outside a SLURM (or similar) job, give --coordinator HOST:PORT"
        raise ProcessesError(f"jax.distributed cannot start: {lines[0] if lines else type(e).__name__}{hint}") from None


def count() -> int:
    return jax.process_count()


def index() -> int:
    return jax.process_index()


def is_writer() -> bool:
    """Whether this process writes results: process 0, or the only one."""
    return jax.process_index() == 0


def to_host(a) -> np.ndarray:
    """A numpy copy of a whole array, gathered from every process when it spans several.

    A collective when it spans several: every process must call it, in the same order.
    """
    if not isinstance(a, jax.Array) or a.is_fully_addressable:
        return np.asarray(a)
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(a, tiled=True))


def is_key(a) -> bool:
    """Whether ``a`` is an array of typed PRNG keys (which travel and are saved as their raw data)."""
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def place(a, sharding: jax.sharding.Sharding) -> jax.Array:
    """``jax.device_put(a, sharding)``, also when the sharding spans devices of other processes.

    Across processes ``device_put`` takes host (numpy) data that every process holds
    alike, not a device array, and PRNG keys go as their raw data.
    """
    if sharding.is_fully_addressable:
        return jax.device_put(a, sharding)
    if is_key(a):
        data = place(np.asarray(jax.random.key_data(a)), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    return jax.device_put(np.asarray(a), sharding)


def agree(decide, options: tuple[str, ...], where: str) -> str:
    """Process 0's ``decide()`` (one of ``options``), on every process (a collective).

    ``decide`` runs on process 0 alone (it reads the output directory, which may exist
    there only). An ``InputError`` it raises is raised there as it is, and on the others as
    one line naming ``where`` and pointing at process 0's, so that every process ends alike.
    """
    choices = (*options, "refused")
    refusal = mode = None
    if is_writer():
        try:
            mode = decide()
        except InputError as e:
            refusal, mode = e, "refused"
    if count() > 1:
        mode = choices[broadcast_code(None if mode is None else choices.index(mode))]
    if refusal is not None:
        raise refusal
    if mode == "refused":
        raise ProcessesError(f"{where}: process 0 refused to run there (its own message says why)")
    return mode


def broadcast_flags(flags: list[bool]) -> list[bool]:
    """Process 0's ``flags`` on every process (a collective); the flags themselves where there is one process."""
    if count() == 1 or not flags:
        return list(flags)
    from jax.experimental import multihost_utils

    return [bool(f) for f in multihost_utils.broadcast_one_to_all(np.asarray(flags, np.int32))]


def broadcast_code(code: int | None) -> int:
    """Process 0's ``code``, on every process (a collective); the code itself where there is one process."""
    if count() == 1:
        return int(code)
    from jax.experimental import multihost_utils

    value = np.int32(-1 if code is None else code)
    return int(multihost_utils.broadcast_one_to_all(value))


# Where each process's heartbeat lives in the coordination service's key-value store.
_BEATS = "hivemind/heartbeat/"
_DONE = "done"


class Watchdog:
    """Heartbeats of this process, and a judge of the others'; see ``watch``."""

    def __init__(self, timeout_s: float, lost, client=None, me: int | None = None, n: int | None = None):
        self.timeout_s = timeout_s
        self.period_s = max(0.05, min(timeout_s / 6, 5.0))
        self.lost = lost
        self.client = client
        self.me = jax.process_index() if me is None else me
        self.n = jax.process_count() if n is None else n
        now = time.monotonic()
        self.answered = now  # the last time the coordination service answered
        self.heard = {j: ("", now) for j in range(self.n) if j != self.me}  # value, when it last changed
        self.stopped = threading.Event()
        self.beats = 0

    def start(self) -> Watchdog:
        for target in (self._beat, self._judge):
            threading.Thread(target=target, name=f"hivemind-{target.__name__[1:]}", daemon=True).start()
        return self

    def stop(self) -> None:
        """This process is done: the others stop waiting for its heartbeats, and it stops judging theirs."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        # Best effort: a coordinator already gone has nobody left to tell.
        with contextlib.suppress(Exception):
            self.client.key_value_set(_BEATS + str(self.me), _DONE, allow_overwrite=True)

    def _beat(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beats += 1
                self.client.key_value_set(_BEATS + str(self.me), str(self.beats), allow_overwrite=True)
                seen = dict(self.client.key_value_dir_get(_BEATS))
            except Exception:  # the coordinator is gone: the judge speaks once it has been silent long enough
                self.stopped.wait(self.period_s)
                continue
            now = time.monotonic()
            self.answered = now
            for j, (value, _) in list(self.heard.items()):
                new = seen.get(_BEATS + str(j), "")
                if new != value:
                    self.heard[j] = (new, now)
            self.stopped.wait(self.period_s)

    def _judge(self) -> None:
        while not self.stopped.wait(self.period_s):
            now = time.monotonic()
            if now - self.answered > self.timeout_s:
                who = "process 0, the coordinator," if self.me else "the coordination service"
                self._give_up(f"{who} did not answer for {self.timeout_s:g} s: hung, stopped or cut off")
                return
            # A peer's silence is judged from the service's fresh answers only: when the
            # service itself is silent, that is what the line must name.
            for j, (value, since) in self.heard.items():
                if value != _DONE and self.answered - since > self.timeout_s:
                    self._give_up(f"process {j} sent no heartbeat for {self.timeout_s:g} s: hung, stopped or cut off")
                    return

    def _give_up(self, reason: str) -> None:
        if not self.stopped.is_set():
            self.stopped.set()
            self.lost(reason)


def watch(timeout_s: float, lost) -> Watchdog | None:
    """Start heartbeats and a judge of the other processes' (None with one process).

    ``lost(reason)`` is called once, on the judge's thread, when another process has not
    beaten for ``timeout_s`` seconds, or the coordinator has not answered for as long;
    ``reason`` is one line. The main thread is then typically blocked in a collective that
    will never return, so ``lost`` should say its line and end the process
    (``os._exit``). Call ``Watchdog.stop`` when this process's share is done.
    """
    if jax.process_count() == 1:
        return None
    from jax._src import distributed

    # JAX keeps its client private; where it moves, a run goes on without our watchdog
    # (JAX's own heartbeat deadline still ends a hung run, with its page of log).
    client = getattr(getattr(distributed, "global_state", None), "client", None)
    if not all(hasattr(client, m) for m in ("key_value_set", "key_value_dir_get")):
        return None
    return Watchdog(timeout_s, lost, client).start()
