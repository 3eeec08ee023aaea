"""Run blocks of pairs serially, on threads, or on Dask (a LocalCluster or a cluster address).

The block function is called as ``fn(logp, *args)`` for each ``args`` of ``blocks``.
On a thread pool every thread reads the caller's matrix in place; on Dask the matrix
``logp`` is scattered to every worker once (``broadcast=True``). Each task receives a
block of pairs, never a single pair. Results come back in block order, so the caller's
output does not depend on which worker finished first.

``workers=N`` means threads or processes depending on the work (:func:`executor`'s
``threads``): the screen's kernel is compiled numba that releases the GIL, so N threads of
one process run N blocks at once with nothing to copy, pickle or start (and no script is
re-imported); the walk-forward's folds are mostly pandas, which holds the GIL, so they get
a ``LocalCluster`` of N single-threaded worker processes.
"""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures import as_completed as _threads_completed
from types import FrameType
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from quantlab.errors import QuantlabError

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 10.0
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://[^\s/]+$|^[A-Za-z0-9.\-\[\]:]+:\d+$")


class SchedulerError(QuantlabError, ConnectionError):
    """A Dask scheduler that cannot be reached, or that has no workers."""


def run_blocks(
    fn: Callable[..., Any], logp: np.ndarray, blocks: Sequence[tuple], *, client: Any = None,
    progress: bool | None = None, desc: str = "pairs", weights: Sequence[int] | None = None,
) -> list:
    """``[fn(logp, *b) for b in blocks]``, serially, on ``client`` (a dask Client) or on a
    ``concurrent.futures`` thread pool (what :func:`executor` yields for ``threads=True``).

    ``progress`` shows a tqdm bar counting ``weights`` (pairs per block); None shows it
    only on a terminal or in a notebook.
    """
    weights = list(weights) if weights is not None else [1] * len(blocks)
    total = int(sum(weights))
    with tqdm(total=total, desc=desc, unit=" pairs", disable=_disable(progress), leave=False) as bar:
        if client is None:
            out = []
            for b, w in zip(blocks, weights, strict=True):
                out.append(fn(logp, *b))
                bar.update(w)
            return out
        if isinstance(client, Executor):
            return _run_on_pool(client, fn, logp, blocks, weights, bar)
        from distributed import as_completed

        matrix = client.scatter(logp, broadcast=True, hash=False)
        futures = [client.submit(fn, matrix, *b, pure=False) for b in blocks]
        weight_of = {f.key: w for f, w in zip(futures, weights, strict=True)}
        try:
            if not bar.disable:  # follow completions only to move the bar
                for fut in as_completed(futures):
                    bar.update(weight_of[fut.key])
            return client.gather(futures)
        finally:
            client.cancel(futures + [matrix])


def _run_on_pool(pool: Executor, fn, logp, blocks, weights, bar) -> list:
    """The blocks on a thread pool, results in block order; the first error cancels the
    blocks not started yet and is raised as it was."""
    futures = [pool.submit(fn, logp, *b) for b in blocks]
    weight_of = dict(zip(futures, weights, strict=True))
    try:
        for fut in _threads_completed(futures):
            fut.result()  # raise the first failure now, not after every block has run
            bar.update(weight_of[fut])
        return [f.result() for f in futures]
    finally:
        for f in futures:
            f.cancel()


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def check_address(address: str) -> str:
    """Validate a scheduler address such as ``tcp://10.0.0.5:8786`` (or ``HOST:PORT``)."""
    if not isinstance(address, str) or not _ADDRESS.match(address.strip()):
        raise ValueError(
            f"scheduler: {address!r} is not a scheduler address; expected tcp://HOST:PORT"
        )
    address = address.strip()
    return address if "://" in address else f"tcp://{address}"


@contextlib.contextmanager
def executor(
    client: Any = None, workers: int | None = None, scheduler: str | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, *, threads: bool = False,
) -> Iterator[Any]:
    """Yield what :func:`run_blocks` runs on (None: serial), closing whatever it started.

    At most one of ``client`` (an existing ``distributed.Client``), ``workers`` and
    ``scheduler`` (connect to ``tcp://HOST:PORT``) may be given. ``workers=N`` starts N
    threads of this process when ``threads`` (for work that releases the GIL: no worker
    process, no copy of the data, no ``__main__`` guard needed), else a ``LocalCluster``
    of N single-threaded worker processes. A scheduler that does not answer, or that has
    no worker, within ``connect_timeout`` seconds raises :class:`SchedulerError`.
    """
    given = [n for n, v in (("client", client), ("workers", workers), ("scheduler", scheduler))
             if v is not None]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)}: give only one way to run (client, workers or scheduler)")
    if not (isinstance(connect_timeout, (int, float)) and connect_timeout > 0):
        raise ValueError(f"connect_timeout: expected seconds > 0, got {connect_timeout!r}")
    if client is not None:
        if not (hasattr(client, "submit") and hasattr(client, "scatter")):
            raise TypeError(f"client: expected a dask.distributed.Client, got {type(client).__name__}")
        _wait_for_workers(client, connect_timeout, str(getattr(client, "scheduler", "")))
        yield client
        return
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            kind = "threads" if threads else "worker processes"
            raise ValueError(f"workers: expected a number of {kind} >= 1, got {workers!r}")
        if threads:
            with ThreadPoolExecutor(max_workers=int(workers), thread_name_prefix="quantlab") as pool:
                log.info("%d threads", workers)
                yield pool
            return
        check_main_guard()
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as c:
            log.info("LocalCluster with %d workers at %s", workers, cluster.scheduler_address)
            yield c
        return
    if scheduler is not None:
        address = check_address(scheduler)
        from distributed import Client

        try:
            c = Client(address, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"scheduler: cannot reach the Dask scheduler at {address} within "
                f"{connect_timeout:g} s ({exc.__class__.__name__}); is `dask scheduler` running "
                "there and the port open?"
            ) from None
        try:
            _wait_for_workers(c, connect_timeout, address)
            log.info("scheduler %s with %d workers", address,
                     len(c.scheduler_info().get("workers", {})))
            yield c
        finally:
            c.close()
        return
    yield None


def _wait_for_workers(client: Any, timeout: float, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError):
        raise SchedulerError(
            f"scheduler: the Dask scheduler {address} has no worker after {timeout:g} s; "
            "start some with `dask worker ADDRESS`"
        ) from None


def check_main_guard() -> None:
    """Stop a script that starts a LocalCluster from its top level without the guard.

    Dask starts worker processes with multiprocessing's "spawn": each one re-imports the
    script, which would start a cluster again; distributed then prints ~40 lines of "Nanny
    failed to start" tracebacks. Here the script's own line is found on the call stack and
    looked up in its syntax tree: if it is not inside ``if __name__ == "__main__":``, exit
    with one line saying what to add (a script at import time: nothing else would run).
    Notebooks, ``python -c`` and the fork start method are not affected.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path or not str(path).endswith(".py"):
        return  # a notebook, an interactive shell, python -c: nothing is re-imported
    try:
        import dask

        if dask.config.get("distributed.worker.multiprocessing-method", "spawn") == "fork":
            return
    except ImportError:  # pragma: no cover - distributed needs dask
        return
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main)
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return
    line = frame.f_lineno
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return
    if any(isinstance(node, ast.If) and _is_main_test(node.test)
           and node.lineno <= line <= (node.end_lineno or node.lineno) for node in tree.body):
        return
    raise SystemExit(
        f"workers: {path} line {line} starts a Dask LocalCluster while the script is being "
        "imported; put the code that runs it under `if __name__ == \"__main__\":` (each "
        "worker process re-imports the script)")


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either order)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1
