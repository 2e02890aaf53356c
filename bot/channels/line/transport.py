"""The Messaging API calls the bot makes most, posted over kept-alive connections the inbox's threads share."""

import json
import queue
import select
import socket
import ssl
from http.client import HTTPConnection, HTTPSConnection
from typing import Any
from urllib.parse import urlsplit

from linebot.v3.messaging import ApiException

REQUEST_TIMEOUT = 10.0  # seconds per Messaging API call; a timeout is retried by the inbox
# Kept-alive connections for the Messaging API calls: at least one per thread of the inbox, or a connection is
# opened and closed for each call beyond them.
CONNECTIONS = 32


class Poster:
    """The JSON our renderer made, posted over kept-alive connections (each used by one thread at a time), with
    the SDK client's Authorization and User-Agent headers.

    Neither the SDK's per-call argument models (`PushMessageRequest.from_dict` and back, which only rebuild
    that JSON: about a fifth of a push) nor urllib3's pool (twice http.client's time per call, and headers and
    body in two packets): at thousands of pushes a second, this is most of the bot's work. What the renderer
    makes is checked against the Messaging API spec by the tests' fake LINE platform. Answers other than 2xx
    raise the SDK's ApiException, as its own calls do; no answer (a timeout, a refused or dropped connection)
    raises OSError or http.client.HTTPException, which the inbox retries with backoff and the same retry key.
    """

    def __init__(self, base_url: str, headers: dict[str, str], connections: int = CONNECTIONS) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"LINE API base URL {base_url!r} is not an http(s) URL")
        self.host, self.port, self.path = url.hostname, url.port, url.path.rstrip("/")
        self.tls = ssl.create_default_context() if url.scheme == "https" else None
        self.headers = {**headers, "Content-Type": "application/json"}
        self.idle: queue.LifoQueue[HTTPConnection] = queue.LifoQueue(maxsize=connections)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> None:
        """POST `body` with the X-Line-Retry-Key `key`.

        Raises:
            ApiException: LINE answered other than 2xx (its status, headers and body).
            OSError, http.client.HTTPException: no answer, or one that could not be read.
        """
        data = json.dumps(body, ensure_ascii=False).encode()
        connection = self._connection()
        try:
            headers = {**self.headers, "X-Line-Retry-Key": key} if key else self.headers
            connection.request("POST", self.path + path, body=data, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except BaseException:
            connection.close()  # in an unknown state: never reused
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        if not 200 <= response.status <= 299:
            error = ApiException(status=response.status, reason=response.reason)
            error.body, error.headers = answer, response.headers
            raise error

    def _connection(self) -> HTTPConnection:
        """An idle connection the server has not closed meanwhile, else a new one."""
        while True:
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                break
            if connection.sock is not None and not _readable(connection.sock):
                return connection
            connection.close()
        if self.tls is not None:
            return HTTPSConnection(self.host, self.port, timeout=REQUEST_TIMEOUT, context=self.tls)
        return HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)

    def _give_back(self, connection: HTTPConnection) -> None:
        try:
            self.idle.put_nowait(connection)
        except queue.Full:  # more sender threads than kept connections: this one is not kept
            connection.close()


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it (or sent what we never
    asked for), so it must not be reused. poll, not select: a busy process may have descriptors over 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
