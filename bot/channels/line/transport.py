"""The Messaging API calls the bot makes most, posted over kept-alive connections the inbox's threads share."""

import json
import queue
import select
import socket
import ssl
from http.client import HTTPException, HTTPMessage, RemoteDisconnected
from typing import Any
from urllib.parse import urlsplit

import httptools
from linebot.v3.messaging import ApiException

REQUEST_TIMEOUT = 10.0  # seconds per Messaging API call; a timeout is retried by the inbox
# Kept-alive connections for the Messaging API calls: at least one per thread of the inbox, or a connection is
# opened and closed for each call beyond them.
CONNECTIONS = 32
READ_BYTES = 8_192


class Poster:
    """The JSON our renderer made, posted over kept-alive connections (each used by one thread at a time), with
    the SDK client's Authorization and User-Agent headers.

    Neither the SDK's per-call argument models (`PushMessageRequest.from_dict` and back, which only rebuild
    that JSON: about a fifth of a push) nor urllib3's pool (twice http.client's time per call, and headers and
    body in two packets), nor http.client itself (a third of a push's CPU: its request building, and its
    answer's headers read by the email package's parser): the request is written in one piece and the answer
    read by httptools (llhttp, the parser uvicorn uses). At thousands of pushes a second, this is most of the
    bot's work. What the renderer makes is checked against the Messaging API spec by the tests' fake LINE
    platform. Answers other than 2xx raise the SDK's ApiException, as its own calls do; no answer (a timeout, a
    refused or dropped connection) raises OSError or http.client.HTTPException, which the inbox retries with
    backoff and the same retry key.
    """

    def __init__(self, base_url: str, headers: dict[str, str], connections: int = CONNECTIONS) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"LINE API base URL {base_url!r} is not an http(s) URL")
        self.host, self.path = url.hostname, url.path.rstrip("/")
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.tls = ssl.create_default_context() if url.scheme == "https" else None
        host = url.netloc.rpartition("@")[2]  # as http.client sends it: the port only when the URL names one
        fixed = {"Host": host, "Accept-Encoding": "identity", **headers, "Content-Type": "application/json"}
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self.idle: queue.LifoQueue[socket.socket] = queue.LifoQueue(maxsize=connections)

    def post(self, path: str, body: dict[str, Any], key: str | None = None) -> None:
        """POST `body` with the X-Line-Retry-Key `key`.

        Raises:
            ApiException: LINE answered other than 2xx (its status, headers and body).
            OSError, http.client.HTTPException: no answer, or one that could not be read.
        """
        data = json.dumps(body, ensure_ascii=False).encode()
        retry_key = f"X-Line-Retry-Key: {key}\r\n" if key else ""
        request = (f"POST {self.path}{path} HTTP/1.1\r\n{self._headers}{retry_key}"
                   f"Content-Length: {len(data)}\r\n\r\n").encode("latin-1") + data
        sock = self._connection()
        answer = _Answer()
        parser = answer.parser = httptools.HttpResponseParser(answer)
        try:
            sock.sendall(request)
            while not answer.complete:
                read = sock.recv(READ_BYTES)
                if not read:
                    raise RemoteDisconnected("the LINE API closed the connection without a whole answer")
                parser.feed_data(read)
            status, kept = parser.get_status_code(), answer.kept
        except httptools.HttpParserError as error:
            sock.close()  # in an unknown state: never reused
            raise HTTPException(f"an answer that is not HTTP: {error}") from None
        except BaseException:
            sock.close()
            raise
        if kept:
            self._give_back(sock)
        else:
            sock.close()
        if not 200 <= status <= 299:
            refused = ApiException(status=status, reason=answer.reason)
            refused.body, refused.headers = b"".join(answer.body), answer.message()
            raise refused

    def _connection(self) -> socket.socket:
        """An idle connection the server has not closed meanwhile, else a new one."""
        while True:
            try:
                sock = self.idle.get_nowait()
            except queue.Empty:
                break
            if not _readable(sock):
                return sock
            sock.close()
        sock = socket.create_connection((self.host, self.port), timeout=REQUEST_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            try:
                return self.tls.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        return sock

    def _give_back(self, sock: socket.socket) -> None:
        try:
            self.idle.put_nowait(sock)
        except queue.Full:  # more sender threads than kept connections: this one is not kept
            sock.close()


class _Answer:
    """What httptools' parser reads of one answer (its callbacks)."""

    __slots__ = ("body", "complete", "headers", "kept", "parser", "reason")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.reason = ""
        self.kept = False  # whether the connection stays open after this answer
        self.complete = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Asked now: once the whole answer is read, the parser has started over and answers False.
        self.kept = self.parser is not None and self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def message(self) -> HTTPMessage:
        """The headers as http.client gives them (case-insensitive `get`), for an error's Retry-After."""
        message = HTTPMessage()
        for name, value in self.headers:
            message[name.decode("latin-1")] = value.decode("latin-1")
        return message


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection's socket has something to read: the server closed it (or sent what we never
    asked for), so it must not be reused. poll, not select: a busy process may have descriptors over 1024."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))
