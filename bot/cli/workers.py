"""`serve --workers N`: uvicorn's supervisor, with a listening socket of each worker's own (SO_REUSEPORT)."""

import logging
import socket
from collections.abc import Callable

from uvicorn import Config
from uvicorn.supervisors import Multiprocess

log = logging.getLogger("uvicorn.error")


class WorkersWithOwnSockets(Multiprocess):
    """uvicorn's supervisor (start, health checks, restarts, signals), except that each worker listens on a socket
    of its own, all bound to the same address with SO_REUSEPORT: the kernel then spreads new connections evenly
    between the workers.

    With one shared socket, whichever worker woke first took most of a client's keep-alive connections (14 or 15
    of wrk's 16 with uvloop; 13 of 16 still with libuv's UV_TCP_SINGLE_ACCEPT), and a second worker added almost
    nothing. The supervisor keeps every socket open, so a replaced worker's successor takes over its socket and
    the connections that came meanwhile: they wait for it (a worker starts in 1–4 s), none is refused.
    """

    def __init__(self, config: Config) -> None:
        _refuse_if_taken(config.host, config.port)
        self.worker_sockets = [own_socket(config.host, config.port) for _ in range(config.workers)]
        log.info("Uvicorn running on http://%s:%d with %d workers, a socket each (Press CTRL+C to quit)",
                 config.host, config.port, config.workers)
        super().__init__(config, sockets=[])

    # uvicorn's steps, run for one worker at a time with only that worker's socket in sight: each creates its
    # processes with `self.sockets`.
    def init_processes(self) -> None:
        for sock in self.worker_sockets:
            self.sockets = [sock]
            self.processes_num = 1
            super().init_processes()
        self.processes_num, self.sockets = len(self.worker_sockets), []

    def restart_all(self) -> None:
        self._each_worker(super().restart_all)

    def keep_subprocess_alive(self) -> None:
        self._each_worker(super().keep_subprocess_alive)

    def handle_ttin(self) -> None:
        self.sockets = [own_socket(self.config.host, self.config.port)]
        self.worker_sockets.append(self.sockets[0])
        super().handle_ttin()
        self.sockets = []

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            super().handle_ttou()  # refuses, and says so
            return
        super().handle_ttou()  # the last worker, stopped
        # Its socket closed: the kernel stops sending it connections (any that came while it stopped are reset).
        self.worker_sockets.pop().close()

    def _each_worker(self, step: Callable[[], None]) -> None:
        processes = self.processes
        try:
            for index, sock in enumerate(self.worker_sockets):
                if self.should_exit.is_set():
                    return
                self.processes, self.sockets = [processes[index]], [sock]
                step()
                processes[index] = self.processes[0]
        finally:
            self.processes, self.sockets = processes, []


def _refuse_if_taken(host: str, port: int) -> None:
    """Raise OSError (address in use) when anything listens on (host, port) already. SO_REUSEPORT would let our
    sockets join those of another process of this user, a madoguchi left running say, and the two would share
    the students' connections without a word: this bind, without it, is refused instead."""
    with socket.socket(family=_family(host), type=socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed connection's TIME_WAIT is no owner
        probe.bind((host, port))


def own_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) beside the other workers' (SO_REUSEPORT); each worker's server listens."""
    sock = socket.socket(family=_family(host), type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _family(host: str) -> socket.AddressFamily:
    """IPv6 for an address with colons (as uvicorn tells them apart), else IPv4."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET
