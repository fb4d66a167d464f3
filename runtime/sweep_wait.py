"""Waiting for a sweep's tasks (runtime.sweep): futures as they complete, Ctrl-C between them, and the end of a
local cluster whose workers all died (their nannies killed too: Dask then restarts none, and the sweep would wait
for ever)."""
from __future__ import annotations

import time

#: seconds a local cluster may have no worker before its pending tasks count as failed (a nanny restarts a killed
#: worker within a few seconds)
NO_WORKER_GRACE = 30.0


class NoWorkers(Exception):
    """The local cluster has had no worker for NO_WORKER_GRACE seconds."""


def workers_gone(client, grace=None):
    """A check, cheap to call often, that is true once `client`'s cluster has had no worker for `grace` seconds."""
    seen, asked = [time.monotonic()], [0.0]

    def gone() -> bool:
        now = time.monotonic()
        if now - asked[0] < 1.0:  # the scheduler is asked at most once a second
            return False
        asked[0] = now
        try:
            alive = bool(client.scheduler_info().get("workers"))
        except Exception:  # noqa: BLE001 - a scheduler that does not answer has no worker to offer either
            alive = False
        if alive:
            seen[0] = now
        return now - seen[0] > (NO_WORKER_GRACE if grace is None else grace)

    return gone


def completed(ac, interrupted, gone=lambda: False):
    """Futures of `ac` (dask's as_completed) as they complete; KeyboardInterrupt as soon as Ctrl-C raised the
    flag, NoWorkers once `gone()` says no worker is left to run the rest."""
    while not ac.is_empty():
        if interrupted:
            raise KeyboardInterrupt
        if not ac.has_ready():
            if gone():
                raise NoWorkers
            time.sleep(0.05)
            continue
        for fut in ac.next_batch(block=False):
            if interrupted:
                raise KeyboardInterrupt
            yield fut
    if interrupted:
        raise KeyboardInterrupt
