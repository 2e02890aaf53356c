"""One message at a time per conversation: a lock per conversation in this process, and on PostgreSQL an
advisory lock held by the turn's own transaction, so that several processes (web workers, replicas) take
turns as well; and a bound on the turns this process runs at once."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.services import Core
from core.turns import LockedTurn, TurnStore, lock_conversation

# Turns answered at once in this process. More would not answer sooner: one interpreter runs one thread at a
# time, and each database call gives the interpreter up and must wait to get it back behind every other busy
# thread (measured on SQLite: 2 at once answer /api/chat 10 % slower than 1, 4 slower still, with a longer
# tail). On PostgreSQL a turn also waits for the server's answers, which more turns overlap. The others wait
# here, first come, first served. On PostgreSQL each turn holds a connection of the turns' own (core.turns),
# beside the engine's pool, which a handler's work uses.
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
    def hold(self, conversation_id: str) -> Iterator[None]:
        """Wait for the conversation's turn, then hold it until the block ends (for work beside the turns: a
        chat account linked or unlinked). On PostgreSQL the advisory lock is held by a transaction of its own."""
        with self._turn_of(conversation_id):
            if self.core.engine.dialect.name != "postgresql":
                yield  # SQLite deployments run one process (see README), so the thread lock is enough
                return
            with self.core.engine.begin() as connection:
                lock_conversation(connection, conversation_id)
                yield

    @contextmanager
    def hold_turn(self, conversation_id: str, turns: TurnStore) -> Iterator[LockedTurn | None]:
        """Wait for the conversation's turn, then hold it until the block ends, for a turn of `turns`.

        On PostgreSQL the block gets the turn's connection (`TurnStore.locked`): its transaction takes the
        advisory lock with the turn's read and commits with its write. On SQLite, None.
        """
        with self._turn_of(conversation_id):
            if self.core.engine.dialect.name != "postgresql":
                yield None
                return
            with turns.locked(conversation_id) as held:
                yield held

    @contextmanager
    def _turn_of(self, conversation_id: str) -> Iterator[None]:
        """This process's part: the conversation's lock, then a place among the turns running at once."""
        lock = self._enter(conversation_id)
        try:
            # The conversation's lock first: a second message of one conversation must not take a turn's place.
            with lock, self._turns:
                yield
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
