"""One message at a time per conversation: a lock per conversation in this process, and on PostgreSQL an
advisory lock held by the turn's own transaction, so that several processes (web workers, replicas) take
turns as well; and a bound on the turns this process runs at once."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from core.services import Core
from core.turns import lock_conversation

# Turns answered at once in this process. More would not answer sooner: one interpreter runs one thread at a
# time, and each database call gives the interpreter up and must wait to get it back behind every other busy
# thread (measured on SQLite: 2 at once answer /api/chat 10 % slower than 1, 4 slower still, with a longer
# tail). On PostgreSQL a turn also waits for the server's answers, which more turns overlap. The others wait
# here, first come, first served. On PostgreSQL each turn holds a connection (the pool leaves room for a
# handler's too).
TURNS_AT_ONCE = {"sqlite": 1, "postgresql": 4}


class ConversationLocks:
    """Serializes the handling of messages that belong to the same conversation."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # lock and how many turns hold or wait on it
        # Its waiters are woken in the order they came.
        self._turns = threading.BoundedSemaphore(TURNS_AT_ONCE.get(core.engine.dialect.name, 2))

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[Connection | None]:
        """Wait for the conversation's turn, then hold it until the block ends.

        On PostgreSQL the block gets a connection whose transaction holds the conversation's advisory lock (the
        turn reads and writes its state in it, and it commits when the block ends); on SQLite, None.
        """
        lock = self._enter(conversation_id)
        try:
            # The conversation's lock first: a second message of one conversation must not take a turn's place.
            with lock, self._turns:
                if self.core.engine.dialect.name != "postgresql":
                    yield None  # SQLite deployments run one process (see README), so the thread lock is enough
                    return
                with self.core.engine.begin() as connection:
                    lock_conversation(connection, conversation_id)
                    yield connection
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
