"""Loaded by each worker of the local cluster `msat sweep` starts (a Dask preload, runtime.sweep).

Ctrl-C at a terminal reaches the whole process group. The sweep's own process answers it: it stops between
tasks, keeps the store resumable and exits 130. A worker that took it too would die mid-task with a
traceback on stderr, so the workers ignore it.
"""
import signal


def dask_setup(worker):  # noqa: ARG001 - Dask's preload hook, called in the worker's main thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)
