"""Where a session's graph keeps its checkpoints: langgraph's sqlite saver, one file a run.

langgraph ships the saver in two forms. `AsyncSqliteSaver` hands every statement to a
worker thread (aiosqlite) and waits for it: about seven thread hand-offs a graph step,
some 1 ms of CPU, more than everything else the step does. `SqliteSaver` runs the same
statements on the same tables directly. Here the sync saver gets the async methods the
graph calls, run inline: with the database in WAL mode and synchronous=NORMAL a commit
does not wait for the disk, so a statement takes tens of microseconds, less than the
hand-off to a thread would. The files are the same either way; either saver reads them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from ..errors import RunError


class InlineSqliteSaver(SqliteSaver):
    """langgraph's sqlite checkpointer, its async methods done inline on the event loop."""

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(
        self,
        config: Any,
        *,
        filter: dict[str, Any] | None = None,
        before: Any = None,
        limit: int | None = None,
    ) -> AsyncIterator[Any]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)

    async def aget_delta_channel_history(
        self, *, config: Any, channels: Sequence[str]
    ) -> Mapping[str, Any]:
        return self.get_delta_channel_history(config=config, channels=channels)


@contextmanager
def open_checkpoints(path: Path) -> Iterator[InlineSqliteSaver]:
    """The run's checkpoint database, set up, in WAL mode with synchronous=NORMAL.

    In WAL mode synchronous=NORMAL commits a step without an fsync (the WAL is synced at its
    own checkpoints): a killed process loses no committed step; a power cut may lose the last
    few, which a resume then runs again.
    """
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False)
    except sqlite3.Error as exc:
        raise RunError(f"{path}: cannot open the checkpoints: {exc}") from None
    with closing(conn):
        try:
            # before the tables are made, so that making them costs no fsync per statement
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            saver = InlineSqliteSaver(conn)
            saver.setup()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one
            raise RunError(f"{path}: cannot read the checkpoints: {exc}") from None
        yield saver


# The checkpoint and its ancestors, along parent_checkpoint_id.
_LINEAGE = """
WITH RECURSIVE lineage(id) AS (
    SELECT checkpoint_id FROM checkpoints
     WHERE thread_id = :thread AND checkpoint_ns = '' AND checkpoint_id = :tip
    UNION ALL
    SELECT c.parent_checkpoint_id FROM checkpoints c JOIN lineage ON c.checkpoint_id = lineage.id
     WHERE c.thread_id = :thread AND c.checkpoint_ns = '' AND c.parent_checkpoint_id IS NOT NULL
)
"""


def copy_lineage(
    source: Path, thread: str, checkpoint_id: str, target: InlineSqliteSaver, new_thread: str
) -> None:
    """Copy a checkpoint and its ancestors from another run's database into `target`, under
    the thread `new_thread`, with the writes that led from each to the next: the history of
    that checkpoint as langgraph keeps it, so the new thread goes on from it (its events
    are rebuilt from those writes, see state._events_channel). The writes made from the
    checkpoint itself (the parent's next step) stay behind, so that step is run again.
    Rows are copied as stored, column by column."""
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise RunError(f"{source}: cannot open the checkpoints: {exc}") from None
    args = {"thread": thread, "tip": checkpoint_id}
    with closing(src):
        try:
            for table, where in (("checkpoints", ""), ("writes", " AND checkpoint_id != :tip")):
                cols = [row[1] for row in src.execute(f"PRAGMA table_info({table})")]
                rows = src.execute(
                    f"{_LINEAGE} SELECT {','.join(cols)} FROM {table} WHERE thread_id = :thread "
                    f"AND checkpoint_ns = '' AND checkpoint_id IN (SELECT id FROM lineage){where}",
                    args,
                ).fetchall()
                at = cols.index("thread_id")
                with target.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {table} ({','.join(cols)}) "
                        f"VALUES ({','.join('?' * len(cols))})",
                        [(*r[:at], new_thread, *r[at + 1 :]) for r in rows],
                    )
        except sqlite3.DatabaseError as exc:
            raise RunError(f"{source}: cannot read the checkpoints: {exc}") from None
