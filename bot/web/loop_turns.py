"""The web chat's turns on SQLite: answered on the event loop's thread, their writes committed together once the
loop has answered the turns that were ready, before any of them goes back to its browser."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from core.turns import TurnStore

T = TypeVar("T")


class LoopTurns:
    """Runs chat turns on the event loop's thread with their writes held (core.turns.TurnStore.holding_commits),
    and commits them in one transaction after the other turns the loop had ready: a commit cost a fifth of a turn,
    paid once for all of them. A turn's answer waits for that commit, so an answer never goes out for a turn that
    is not stored."""

    def __init__(self, store: TurnStore) -> None:
        self.store = store
        self._committed: asyncio.Future[None] | None = None  # the commit that is due, once the ready turns ran

    def answer(self, turn: Callable[[], T]) -> T:
        """Run `turn` (which answers one message), its writes held for the next commit, which is scheduled after
        the callbacks the loop has ready (the other requests that came in together). Scheduled whatever the turn
        did, raising included: held writes never wait for a request that may not come."""
        try:
            with self.store.holding_commits():
                return turn()
        finally:
            if self._committed is None and self.store.holds_writes():
                loop = asyncio.get_running_loop()
                self._committed = loop.create_future()
                loop.call_soon(self._commit)

    async def written(self) -> None:
        """Wait for the commit of the turns answered so far (at once when nothing is held)."""
        if self._committed is not None:
            # Shielded: a request whose browser went away stops waiting; the commit goes on for the others.
            await asyncio.shield(self._committed)

    def _commit(self) -> None:
        committed, self._committed = self._committed, None
        try:
            self.store.commit_held()  # a failure is logged there: the students have their answers
        finally:
            if committed is not None:
                committed.set_result(None)

    def close(self) -> None:
        """Commit what is still held (the app is stopping)."""
        self.store.commit_held()
