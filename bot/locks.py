"""One message at a time per conversation: a lock per conversation in this process, and on PostgreSQL
an advisory lock so that several processes (web workers, replicas) take turns as well."""

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


class ConversationLocks:
    """Serializes the handling of messages that belong to the same conversation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # lock and how many turns hold or wait on it

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        """Wait for the conversation's turn, then hold it until the block ends."""
        lock = self._enter(conversation_id)
        try:
            with lock:
                if self.engine.dialect.name == "postgresql":
                    with self._advisory(conversation_id):
                        yield
                else:
                    yield  # SQLite deployments run one process (see README), so the thread lock is enough
        finally:
            self._leave(conversation_id)

    def _enter(self, conversation_id: str) -> threading.Lock:
        with self._guard:
            lock, users = self._locks.get(conversation_id, (threading.Lock(), 0))
            self._locks[conversation_id] = (lock, users + 1)
            return lock

    def _leave(self, conversation_id: str) -> None:
        with self._guard:  # forget idle conversations so the table does not grow without bound
            lock, users = self._locks[conversation_id]
            if users == 1:
                del self._locks[conversation_id]
            else:
                self._locks[conversation_id] = (lock, users - 1)

    @contextmanager
    def _advisory(self, conversation_id: str) -> Iterator[None]:
        key = int.from_bytes(hashlib.sha256(conversation_id.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
