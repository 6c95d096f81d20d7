"""The heartbeat watchdog of multi-process runs, against an in-memory store standing in for
JAX's coordination service: who is judged silent, and when."""

from __future__ import annotations

import threading
import time

from hivemind.engine.processes import Watchdog


class Store:
    """key_value_set / key_value_dir_get of the coordination service; ``hang`` makes every call block."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.hang = threading.Event()
        self.lock = threading.Lock()

    def _wait(self):
        while self.hang.is_set():
            time.sleep(0.01)

    def key_value_set(self, key, value, allow_overwrite=False):
        self._wait()
        with self.lock:
            assert allow_overwrite or key not in self.data
            self.data[key] = value

    def key_value_dir_get(self, prefix):
        self._wait()
        with self.lock:
            return [(k, v) for k, v in self.data.items() if k.startswith(prefix)]


class Peer:
    """Another process's heartbeat thread: beats until stopped, or says it is done."""

    def __init__(self, store: Store, me: int, n: int):
        self.dog = Watchdog(0.5, lambda reason: None, store, me=me, n=n)
        self.thread = threading.Thread(target=self.dog._beat, daemon=True)
        self.thread.start()

    def freeze(self):  # SIGSTOP: nothing more from it, not even "done"
        self.dog.stopped.set()


def _judged(store: Store, me: int, n: int, timeout: float = 0.5) -> tuple[Watchdog, list[tuple[str, float]]]:
    said: list[tuple[str, float]] = []
    t0 = time.monotonic()
    dog = Watchdog(timeout, lambda reason: said.append((reason, time.monotonic() - t0)), store, me=me, n=n)
    return dog.start(), said


def _wait_for(said: list, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not said and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_silent_peer_is_named_after_the_timeout_and_only_once():
    store = Store()
    peers = [Peer(store, j, 3) for j in (1, 2)]
    dog, said = _judged(store, 0, 3, timeout=1.0)
    time.sleep(2.0)  # two timeouts of healthy beats: nobody is judged
    assert said == []
    peers[1].freeze()
    frozen = time.monotonic()
    _wait_for(said, 3.0)
    time.sleep(0.5)
    assert len(said) == 1
    reason, _ = said[0]
    assert reason == "process 2 sent no heartbeat for 1 s: hung, stopped or cut off"
    assert time.monotonic() - frozen >= 1.0
    peers[0].freeze()


def test_a_peer_that_is_done_is_not_waited_for():
    store = Store()
    peer = Peer(store, 1, 2)
    dog, said = _judged(store, 0, 2)
    time.sleep(0.3)
    peer.dog.stop()  # its share is done; process 0 goes on writing, for longer than the timeout
    time.sleep(1.5)
    assert said == []
    dog.stop()
    assert store.data["hivemind/heartbeat/0"] == "done"


def test_a_coordinator_that_stops_answering_is_named_by_the_others():
    store = Store()
    Peer(store, 0, 2)
    dog, said = _judged(store, 1, 2)
    time.sleep(0.2)
    store.hang.set()  # process 0, which serves the store, is stopped: its beats and every call block
    _wait_for(said, 3.0)
    store.hang.clear()
    assert [r for r, _ in said] == ["process 0, the coordinator, did not answer for 0.5 s: hung, stopped or cut off"]


def test_a_peer_that_never_beats_is_named_from_the_start():
    store = Store()
    dog, said = _judged(store, 0, 2, timeout=0.3)
    _wait_for(said, 3.0)
    assert [r for r, _ in said] == ["process 1 sent no heartbeat for 0.3 s: hung, stopped or cut off"]
    assert said[0][1] >= 0.3
