"""`serve --workers N`: each worker listens on a socket of its own, and the kernel spreads connections between
them (with one shared socket, whichever worker was waiting for connections took them: under wrk's load, up to 14
of its 16, measured with `ss`)."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter

from tests.bot.served import MADOGUCHI, Served, two_workers  # noqa: F401 (a fixture)

CONNECTIONS = 64


def listening(served: Served, port: str) -> list[set[int]]:
    """The workers listening on `port`, socket by socket, once both have started (their servers listen just after
    their start-up is logged)."""
    workers = {int(re.search(r"Started server process \[(\d+)\]", line).group(1))
               for line in served.wait_for("Started server process", 2)}
    served.wait_for("Application startup complete", 2)
    deadline = time.monotonic() + 10
    while True:
        owners = [pids & workers for pids in _owners(port)]
        if set().union(*owners) == workers or time.monotonic() > deadline:
            return owners
        time.sleep(0.05)


def _owners(port: str) -> list[set[int]]:
    """The processes holding each socket listening on `port`, without the supervisor (which holds them all, to
    keep each for a worker's successor), in the order `ss` lists the sockets."""
    lines = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    holders = [{int(pid) for pid in re.findall(r"pid=(\d+)", line)} for line in lines]
    supervisor = set.intersection(*holders) if len(holders) > 1 else set()
    return [pids - supervisor for pids in holders]


def test_each_worker_listens_on_a_socket_of_its_own(two_workers):  # noqa: F811
    served, base, _ = two_workers
    owners = listening(served, base.rsplit(":", 1)[1])
    assert len(owners) == 2 and sorted(map(len, owners)) == [1, 1] and len(set.union(*owners)) == 2, owners


def test_a_burst_of_connections_is_shared_between_the_workers(two_workers):  # noqa: F811
    served, base, _ = two_workers
    port = base.rsplit(":", 1)[1]
    assert len(listening(served, port)) == 2
    # Each connection asks at once, as a client opening its pool of keep-alive connections does.
    body = json.dumps({"user": "burst", "text": "支払い方法を教えて"}).encode()
    request = b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
        + b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    clients = []
    try:
        for _ in range(CONNECTIONS):
            clients.append(socket.create_connection(("127.0.0.1", int(port)), timeout=30))
            clients[-1].sendall(request)
        for client in clients:
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
        ports = {str(client.getsockname()[1]) for client in clients}
    finally:
        for client in clients:
            client.close()
    # Which worker answered each connection: its access line names the client's address and the process.
    answered = [json.loads(line) for line in served.wait_for('"POST /api/chat', CONNECTIONS)]
    by_worker = Counter(line["process"] for line in answered
                        if re.search(r"127\.0\.0\.1:(\d+)", line["message"]).group(1) in ports)
    assert sum(by_worker.values()) == CONNECTIONS
    # Spread by a hash of each connection's addresses: 32 each on average; fewer than 16 happens about once in
    # 10,000 runs.
    assert len(by_worker) == 2 and min(by_worker.values()) >= 16, by_worker


def test_a_worker_that_dies_is_replaced_on_its_own_socket(two_workers):  # noqa: F811
    served, base, _ = two_workers
    port = base.rsplit(":", 1)[1]
    before = listening(served, port)
    dead = min(set.union(*before))
    os.kill(dead, signal.SIGKILL)
    started = served.wait_for("Started server process", 3)[2]
    successor = int(re.search(r"Started server process \[(\d+)\]", started).group(1))
    served.wait_for("Application startup complete", 3)
    deadline = time.monotonic() + 10
    while (after := _owners(port)) != [owners - {dead} | ({successor} if dead in owners else set())
                                       for owners in before] and time.monotonic() < deadline:
        time.sleep(0.05)
    # The same two sockets, in the same order: the successor took the dead worker's, the other kept its own.
    assert after == [owners - {dead} | ({successor} if dead in owners else set()) for owners in before]


def test_a_port_another_process_listens_on_is_refused_even_with_reuseport(tmp_path):
    # A madoguchi left running (the same user, SO_REUSEPORT too) would otherwise share the port with this one.
    from tests.conftest import free_port

    port = free_port()
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        env = {key: val for key, val in os.environ.items() if not key.startswith(("DATABASE_URL", "WEB_CONCURRENCY"))}
        env.update(DATA_DIR=str(tmp_path), DEMO_DATA="false")
        refused = subprocess.run([MADOGUCHI, "serve", "--port", str(port), "--workers", "2", "--no-scheduler"],
                                 capture_output=True, text=True, env=env, timeout=120)
    assert refused.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in refused.stderr
