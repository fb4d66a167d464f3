"""`msat sweep` (docs/cli.md): a grid of predict calls on dask.distributed, one labelled Zarr store.

Each task is one point of every swept option but chi (runtime.grid) and runs its chi ladder through
the same ``predict`` as the CLI, seeded by the task's own seed (never by the worker), so a sweep point
equals `msat predict` with the same arguments. Tasks run on a local cluster of worker processes (one
BLAS thread each) or on an existing scheduler; the client writes each finished task into its own
region of the store (chunks aligned with tasks, so no two tasks share a chunk), its outputs first and
its `done` flag last: a crash leaves the store readable and the task not done, and `--resume` runs
only the tasks not done (refusing a store made for another sweep or whose making was interrupted:
runtime.sweep_store). A task a method does not cover (an input error of that point, e.g. exact for
erf) is NaN with converged = false and a `note`; a sweep none of whose tasks is valid is bad input
(exit 2), also where only the data reveal it (kappa below the float64 resolution of their kernel).
Scalar observables (kernel alignment, s_eff, ...) become variables the first time a task reports
them, NaN where a method has none.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass

from . import grid as _grid, labelled, memory, sweep_store, sweep_wait
from .errors import InputError, MemoryRequestError
from .sweep_store import prepare as _prepare, writable as _writable  # _prepare: looked up here by _run (tests)


def builtin_name(task, source) -> str:
    """The built-in set of a task: its dataset coordinate (`--dataset ising,teacher`), else the source's name."""
    from .data import BUILTINS

    return task["dataset"] if task.get("dataset") in BUILTINS else source[1]


def dataset_for(task, source):
    """The task's data: a built-in set made from the task's (dataset, seed, P, D, P_test), or the loaded file."""
    if isinstance(source, tuple):
        from .data import builtin

        return builtin(builtin_name(task, source), P=task["P"], D=task["D"], P_test=task["P_test"],
                       seed=task["seed"])
    return source


def _options(g, task, extra):
    """The predict options of a task (all but the data and chi), as run_task and precheck pass them."""
    method, _, order = task["method"].partition(":")
    counts = {k: task[k] or None for k in _grid.DEFAULT_COUNTS}  # 0: not given, the method's default
    return dict(widths=list(_grid.widths_of(g, task)), kappa=task["kappa"], g_v=task["g_v"],
                g_w=_grid.g_w_of(task["g_w"]), activation=task["activation"], method=method,
                order=int(order) if order else None, dressed=task["dressed"], seed=task["seed"],
                estimator=task["estimator"], readout=task["readout"], **counts, **extra)


def run_task(g, task, source, extra):
    """One task's chi ladder: (arrays per output, note, failure)."""
    from .predict import predict, quiet

    opts = _options(g, task, extra)
    try:
        ds = dataset_for(task, source)
    except Exception as err:  # noqa: BLE001 - reported as the task's failure (one line), not a worker traceback
        return None, None, f"{type(err).__name__}: {err}"
    try:
        chis = g.chi_values(opts["widths"][-1])
        with quiet():  # the store keeps no per-result warnings (docs/cli.md)
            res = predict(ds.X, ds.y, ds.X_test, chi=chis, **opts)
    except InputError as err:  # the point is not covered (exact for erf, kappa below the data's resolution)
        return dict(labelled.empty(g, task, ds.P, ds.P_test, ds.y_test), input_error=True), str(err), None
    except Exception as err:  # noqa: BLE001 - a failed task is data for the report, not a crash
        return labelled.empty(g, task, ds.P, ds.P_test, ds.y_test), None, f"{type(err).__name__}: {err}"
    # a chi point that did not converge is data (converged false); the note keeps why (truncated to the store's width)
    return labelled.outputs(res, ds.P, ds.P_test, ds.y_test, chis), labelled.failure_note(res), None


def precheck(g, source, extra):
    """Every task's parameters checked as predict checks them (runtime.params), before any work and without
    making its data: a sweep none of whose tasks is valid is bad input (InputError, exit 2), and so is one with
    a task that would not fit in memory (its built-in set or its method); a task that a method does not cover
    (exact for erf, in a sweep over activations) stays data, a note in the store. Returns a line for each option
    given that no valid task uses (`--samples` without the sampler): the store keeps no per-result warnings."""
    from . import params as _params
    from .data.builtin import reserve

    valid, first, ignored, random = 0, None, {}, False
    for _, t in g.tasks():
        try:
            if isinstance(source, tuple):
                reserve(t["P"], t["D"], t["P_test"], builtin_name(t, source))
                sizes = (t["P"], t["D"], t["P_test"])
            else:
                sizes = (source.P, source.D, source.P_test)
            opts = _options(g, t, extra)
            said = _params.build(*sizes, **opts).ignored
            if True in g.coords["dressed"] and not opts["dressed"]:
                # a listed false is given too (`--dressed true,false` over exact alone runs identical copies)
                said += tuple(s for s in _params.build(*sizes, **dict(opts, dressed=True)).ignored if "dressed" in s)
            for option in {s.partition(": ignored by")[0] for s in said}:
                ignored[option] = ignored.get(option, 0) + 1
            random = random or opts["method"] == "sample" or (opts["method"] == "adaptive"
                                                               and opts["activation"] != "linear")
            valid += 1
        except MemoryRequestError as err:
            raise MemoryRequestError(f"task {_label(t)}: {err}") from None
        except InputError as err:
            first = first or err
    if not valid:
        raise InputError(f"no task of this sweep is valid (the first: {first})")
    lines = [f"{option}: no task of this sweep uses it" for option, n in ignored.items() if n == valid]
    if g.order_unused:
        lines.append("--order: no task of this sweep uses it (every --method item gives its own order or takes none)")
    if not isinstance(source, tuple) and len(g.coords["seed"]) > 1 and not random:
        lines.append("--seed: no task of this sweep uses it (the data come from --data and no method draws "
                     "random numbers): its values are identical copies")
    return lines


def _label(task) -> str:
    return ", ".join(f"{k} = {_plain(v)}" for k, v in task.items())


@dataclass(frozen=True)
class _Job:
    """The arguments of one sweep() call, as _run reads them."""
    g: _grid.Grid
    source: object  # ("builtin", name: the default of tasks without a dataset coordinate) or a loaded Dataset
    out: object
    workers: int | None
    resume: bool
    progress: bool
    extra: dict
    log: object
    task: object
    command: str | None


def _say(stream, text) -> None:
    """A line of the log; none where stderr cannot take it (closed, `2>&-`): the store holds the results."""
    try:
        print(text, file=stream)
    except (OSError, ValueError):
        pass

def sweep(g, source, out, *, workers=None, scheduler=None, resume=False, progress=False, extra=None, log=None,
          task=run_task, command=None):
    """Run every task not yet done; returns the failures (task coordinates and message). ``task`` is
    the function a worker runs per task (``run_task``; the benchmark times the sweep on no-op tasks)."""
    from dask.distributed import Client

    for said in precheck(g, source, extra or {}):
        if log:
            _say(log, f"msat: warning: {said}")
    _writable(str(out))
    client = None
    if not scheduler:  # checked before the store is made, as every user mistake is
        workers = memory.sweep_workers(workers, g.n_tasks)
    else:
        try:  # before the store is made: an address that does not answer is a user mistake, not a failed task
            client = Client(scheduler, timeout="10s")
        except (OSError, ValueError, TypeError) as err:
            raise InputError(f"cannot reach the scheduler at {scheduler}: {err}") from None
    # Ctrl-C only raises a flag, read between steps and tasks: a KeyboardInterrupt in Dask's machinery can be
    # swallowed (the sweep ran on), one in zarr's writes spills pending tasks on stderr, none lands mid-write. The
    # terminal sends it to the process group: local workers ignore it (runtime.sweep_worker; tracebacks filled stderr)
    interrupted = []
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(1)) if main_thread else None
    try:
        job = _Job(g, source, out, workers, resume, progress, extra or {}, log, task, command)
        failures = _run(job, client, interrupted)
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    # set or cleared: a resume that ran the failed tasks leaves the store an uninterrupted sweep would
    if failures or os.path.isdir(str(out)):
        sweep_store.set_attrs(out, failures=json.dumps(failures) if failures else None)
    return failures


def _run(job, client, interrupted):
    """The store prepared and every pending task of `job` (sweep's arguments) run; KeyboardInterrupt where
    `interrupted` is raised."""
    from dask.distributed import Client, LocalCluster, as_completed

    try:
        done = _prepare(str(job.out), job.g, job.source, job.resume, job.command)
    except InputError:
        if client is not None:
            client.close()
        raise
    fresh = not done.any()  # nothing in the store yet: one whose every task is invalid is removed (bad input)
    pending = [(idx, t) for idx, t in job.g.tasks() if not done[idx]]
    failures, invalid, held = [], {}, []
    if not pending or interrupted:
        if client is not None:
            client.close()
        if interrupted:
            raise KeyboardInterrupt
        return failures
    cluster, bar = None, None
    try:
        if client is None:
            # no more workers than tasks, each with one thread for BLAS and numba alike: a task per core, not
            # per core times the cores. The scheduler's HTTP server (on even with no dashboard) on a free port:
            # the default one, taken by another cluster, printed a warning on stderr. Dask's own ERROR lines (a task
            # whose workers died) repeated msat's one-line report of the failed task, with a timestamp
            cluster = LocalCluster(n_workers=min(job.workers, len(pending)), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL,
                                   scheduler_kwargs={"dashboard_address": ":0"}, preload=["msat.runtime.sweep_worker"],
                                   env={"NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "1")})
            client = Client(cluster)
        if interrupted:
            raise KeyboardInterrupt
        from .progress import Progress

        bar = Progress(len(pending), job.progress, "sweep tasks")
        writer = labelled.ZarrWriter(job.out, job.g)
        t0 = time.perf_counter()
        src = job.source if isinstance(job.source, tuple) else client.scatter(job.source, broadcast=True)
        futures = {client.submit(job.task, job.g, t, src, job.extra, pure=False): (idx, t) for idx, t in pending}
        gone = sweep_wait.workers_gone(client) if cluster is not None else (lambda: False)  # ours to judge
        outcomes = ((fut, None) for fut in sweep_wait.completed(as_completed(futures), interrupted, gone))
        for k, (fut, lost) in enumerate(_with_lost(outcomes, futures), 1):
            idx, t = futures[fut]
            try:
                res, note, fail = (None, None, lost) if lost else fut.result()
            except Exception as err:  # noqa: BLE001 - a task whose worker kept dying
                res, note, fail = None, None, f"{type(err).__name__}: {err}"
            if fail:
                failures.append({"task": {d: _plain(v) for d, v in t.items()}, "error": fail.splitlines()[0]})
            else:
                writer.write(idx, res, note)
                if res.get("input_error"):
                    invalid[idx] = note
            bar.step()
            if job.log and not job.progress:
                held.append(f"msat sweep: task {k}/{len(pending)} {'failed' if fail else 'done'} "
                            f"({time.perf_counter() - t0:.1f} s)")
                if not (fresh and len(invalid) == k):  # held while every task is invalid: then one line, the error
                    _say(job.log, "\n".join(held))
                    held.clear()
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    if fresh and not failures and len(invalid) == len(pending):
        # every task an input error that only its data reveal (kappa below the kernel's float64 resolution):
        # the user's mistake, as when precheck finds no valid task, not a store of NaN with exit 0
        sweep_store.remove(job.out)
        first = " ".join(invalid[min(invalid)].split())
        raise InputError(f"no task of this sweep is valid (the first: {first})")
    return failures


def _with_lost(outcomes, futures):
    """(future, None) as tasks complete, then (future, why) for each task left when no worker is left to run it."""
    seen = set()
    try:
        for fut, lost in outcomes:
            seen.add(fut)
            yield fut, lost
    except sweep_wait.NoWorkers:
        why = (f"no worker left: the local cluster's workers died and none was restarted within "
               f"{sweep_wait.NO_WORKER_GRACE:g} s")
        yield from ((fut, why) for fut in futures if fut not in seen)


def _plain(v):
    return v.item() if hasattr(v, "item") else v
