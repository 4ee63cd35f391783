"""The harness's group commit: records that finish close together share one write + fsync."""

from __future__ import annotations

import asyncio
import contextlib

from sf_bench.records import Record, RecordStore

__all__ = ["GroupWriter"]


class GroupWriter:
    """Group commit: records that finish close together share one write + fsync.

    :meth:`put` returns only once the record is on disk (written and fsynced), so the
    guarantee is the same as one fsync per record, with far fewer syncs when answers come
    fast. The fsync runs in a worker thread, so scoring goes on meanwhile. After a failed
    write every later :meth:`put` raises the same error.
    """

    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.queue: asyncio.Queue[tuple[Record, asyncio.Future[None]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    async def put(self, record: Record) -> None:
        if self.failed is not None:
            raise self.failed
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._loop())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((record, future))
        await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                if self.failed is not None:
                    raise self.failed
                await loop.run_in_executor(None, self.store.append, [r for r, _ in batch])
            except Exception as e:  # noqa: BLE001 - handed to every waiting put()
                self.failed = e
                kept = getattr(e, "kept", 0)
                for i, (_, future) in enumerate(batch):
                    if not future.done():
                        if i < kept:
                            future.set_result(None)
                        else:
                            future.set_exception(e)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
