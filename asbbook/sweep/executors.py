"""Where the points of a sweep are computed: in process, in a process pool, or on Dask.

Part of the :mod:`asbbook.sweep` package. Each executor yields ``(index, result_json,
seconds)`` in completion order; only the calling process writes the cache.

No process outlives a killed sweep: pool workers run a daemon thread that polls ``os.getppid()``
and exits the worker within :data:`PARENT_POLL_SECONDS` of its parent's death (a SIGKILL leaves
the parent no chance to clean up). The multiprocessing resource tracker then sees its pipe close
and exits too. Dask's own worker processes already exit with their nanny.

Dask failures are quick and clear (:class:`SchedulerError`, naming the address and what to do):

- ``connect_timeout`` (``$ASBBOOK_DASK_CONNECT_TIMEOUT``, default 10 s) bounds the connection; a
  refused port fails at once; an address that answers HTTP (the dashboard, port 8787) or closes
  without the Dask handshake is refused within about two seconds;
- ``no_workers_timeout`` (``$ASBBOOK_DASK_NO_WORKERS_TIMEOUT``, default 10 s) bounds the wait for
  a first worker, and for a new one when every worker has left during the sweep;
- a scheduler that cannot import the sweep function (or ``asbbook``) is told so by name.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import pkgutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urlsplit

from asbbook.sweep.cache import canonical, code_version, loaded_code_hash, to_jsonable

PARENT_POLL_SECONDS = 0.25
DEFAULT_DASK_TIMEOUT = 10.0
CONNECT_TIMEOUT_ENV = "ASBBOOK_DASK_CONNECT_TIMEOUT"
NO_WORKERS_TIMEOUT_ENV = "ASBBOOK_DASK_NO_WORKERS_TIMEOUT"


class SchedulerError(RuntimeError):
    """A Dask scheduler cannot be reached or used; the message names its address and the fix."""


# --------------------------------------------------------------------------------------------
# Evaluation (runs in the worker for the processes/dask executors)
# --------------------------------------------------------------------------------------------


def _limit_worker_threads(n_threads: int | None) -> None:
    """A worker process is already one of ``n_workers`` per core: torch's own intra-op threads on
    top of that oversubscribe the cores (measured here: 40x slower small matmuls under load)."""
    if n_threads is None:
        return
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a pinned dependency
        return
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)


def evaluate(
    fn: Callable, point: dict, check_version: bool = False, worker_threads: int | None = None
) -> tuple[str, float, str, str]:
    """Call ``fn(point)``; return the result as JSON text, the seconds taken, (if asked) the
    worker's code version and the hash of ``fn``'s code as the worker loaded it. The result is
    validated here so that bad values fail in the worker.
    ``worker_threads`` (set by the process and Dask executors) caps torch's threads in the worker."""
    _limit_worker_threads(worker_threads)
    start = time.perf_counter()
    result = fn(point)
    seconds = time.perf_counter() - start
    if not isinstance(result, Mapping):
        raise ValueError(
            f"fn must return a dict, got {type(result).__name__} for point {canonical(point)}"
        )
    result = to_jsonable(result, f"result of point {canonical(point)}", allow_nan=True)
    version = code_version() if check_version else ""
    return canonical(result), seconds, version, loaded_code_hash(fn)


def check_worker_code(fn: Callable, worker_code: str) -> None:
    """A worker that imported ``fn`` from a file edited since this process imported it would
    store the new code's results under the old code's key: refuse."""
    if worker_code != loaded_code_hash(fn):
        raise RuntimeError(
            f"a worker runs different code for {fn.__module__}.{fn.__qualname__} than this "
            "process loaded (was its file edited after it was imported?): reload the module or "
            "restart the kernel, then rerun (the entries written so far stay valid)"
        )


def check_importable(fn: Callable, executor: str) -> None:
    """For the processes executor, ``fn`` is pickled by reference and imported by the workers."""
    module = sys.modules.get(fn.__module__)
    if fn.__module__ == "__main__" and not getattr(module, "__file__", None):
        raise ValueError(
            f"with executor={executor!r}, fn must be importable by worker processes; "
            f"{fn.__qualname__} is defined in an interactive session (notebook). Move it to a "
            "module, or use executor='dask' (which ships notebook functions by value)"
        )
    if fn.__module__ != "__main__":
        try:
            obj = importlib.import_module(fn.__module__)
            for part in fn.__qualname__.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"with executor={executor!r}, fn must be importable as "
                f"{fn.__module__}.{fn.__qualname__}: {exc}"
            ) from exc
        if obj is not fn:
            raise ValueError(
                f"with executor={executor!r}, {fn.__module__}.{fn.__qualname__} does not refer "
                "to fn (was it redefined?)"
            )


def _annotate(exc: BaseException, point: dict) -> None:
    exc.add_note(f"(while computing sweep point {canonical(point)})")


# --------------------------------------------------------------------------------------------
# In process and process pool
# --------------------------------------------------------------------------------------------


def run_inprocess(fn, todo):
    for i, point in todo:
        try:
            text, seconds, _, _ = evaluate(fn, point)
        except Exception as exc:
            _annotate(exc, point)
            raise
        yield i, text, seconds


def _exit_when_orphaned(parent_pid: int, interval: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(70)  # the sweep was killed: nobody will read our result
        time.sleep(interval)


def watch_parent(parent_pid: int, interval: float = PARENT_POLL_SECONDS) -> None:
    """Pool initializer: exit this worker when ``parent_pid`` is no longer its parent.

    A thread polling ``os.getppid()`` is portable and, unlike ``PR_SET_PDEATHSIG``, not tied to
    the lifetime of the parent *thread* that happened to start the worker."""
    if os.getppid() != parent_pid:
        os._exit(70)
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid, interval), daemon=True, name="watch-parent"
    ).start()


def run_processes(fn, todo, n_workers):
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=n_workers, mp_context=ctx, initializer=watch_parent, initargs=(os.getpid(),)
    )
    with pool:
        futures = {pool.submit(evaluate, fn, point, False, 1): (i, point) for i, point in todo}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i, point = futures[fut]
                    try:
                        text, seconds, _, worker_code = fut.result()
                    except Exception as exc:
                        _annotate(exc, point)
                        raise
                    check_worker_code(fn, worker_code)
                    yield i, text, seconds
        finally:
            for fut in pending:
                fut.cancel()


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------


def dask_timeout(value: float | None, env: str, name: str) -> float:
    """``value``, else ``$env``, else :data:`DEFAULT_DASK_TIMEOUT`; a finite number of seconds > 0."""
    source = name
    if value is None:
        raw = os.environ.get(env)
        if not raw:
            return DEFAULT_DASK_TIMEOUT
        source = f"${env}"
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{source} must be a number of seconds, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{source} must be a finite number of seconds, got {value!r}")
    if value <= 0:
        raise ValueError(f"{source} must be > 0 seconds, got {value!r}")
    return float(value)


_HINT = "start one with `dask scheduler --port 8786` and pass the address it prints"


def probe_scheduler(address: str, timeout: float) -> None:
    """Refuse, within a few seconds, an address that is not a live Dask scheduler.

    A Dask scheduler sends its handshake as soon as a connection opens; a web server (such as
    the dashboard) waits for a request. So: connect (a refused port fails at once), wait up to
    two seconds for the first bytes, and if none come, check whether the port answers HTTP.
    Only plain ``tcp://`` addresses are probed; other schemes go straight to ``Client``.
    """
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme in ("http", "https"):
        raise SchedulerError(
            f"{address} is a web address (the Dask dashboard?), not a scheduler address: pass "
            "the scheduler's tcp:// address (`dask scheduler` prints it as 'Scheduler at', "
            "by default on port 8786; the dashboard is on 8787)"
        )
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise SchedulerError(
            f"cannot read a host and port from the Dask scheduler address {address!r}: "
            "write it as tcp://HOST:PORT"
        )
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise SchedulerError(
            f"no Dask scheduler at {address} (connection refused): check the address, or {_HINT}"
        ) from None
    except TimeoutError:
        raise SchedulerError(
            f"could not connect to the Dask scheduler at {address} within {timeout:g} s: check "
            f"the address and the firewall, or raise connect_timeout / ${CONNECT_TIMEOUT_ENV}"
        ) from None
    except OSError as exc:
        raise SchedulerError(
            f"cannot reach the Dask scheduler at {address} ({exc}): check the address, or {_HINT}"
        ) from None
    with sock:
        sock.settimeout(min(2.0, timeout))
        try:
            first = sock.recv(16)
        except TimeoutError:
            first = None
        except OSError:
            first = b""
        if first:
            return  # it spoke first, like a Dask scheduler
        if first == b"":
            raise SchedulerError(
                f"{address} closed the connection without the Dask handshake: it is not a Dask "
                f"scheduler; check the port, or {_HINT}"
            )
        answer = b""
        with contextlib.suppress(OSError):
            sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            answer = sock.recv(16)
    if answer.startswith(b"HTTP/"):
        raise SchedulerError(
            f"{address} answers HTTP: it is probably the Dask dashboard (port 8787), not the "
            "scheduler. Pass the scheduler's address (`dask scheduler` prints it as "
            "'Scheduler at', by default tcp://HOST:8786)"
        )
    # Silent, or an overloaded scheduler that answered late: Client's own time-out decides.


def connect(address: str, connect_timeout: float):
    """A ``distributed.Client`` to ``address``, or a :class:`SchedulerError` within the timeout."""
    from distributed import Client

    probe_scheduler(address, connect_timeout)
    try:
        return Client(address, timeout=connect_timeout)
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(
            f"could not connect to the Dask scheduler at {address} within {connect_timeout:g} s "
            f"({exc}): check that it runs, or raise connect_timeout / ${CONNECT_TIMEOUT_ENV}"
        ) from None


def _import_message(address: str, target: str, exc: BaseException) -> str:
    return (
        f"the Dask scheduler at {address} cannot import {target} "
        f"({type(exc).__name__}: {exc}): install the same code on the scheduler and on every "
        "worker (e.g. `pip install -e .` of the same commit, or put the module on their "
        "PYTHONPATH) and restart them"
    )


def check_scheduler_imports(client, fn: Callable, address: str) -> None:
    """The scheduler unpickles every task, so it must import ``asbbook`` and ``fn``'s module."""
    targets = [f"{evaluate.__module__}:{evaluate.__qualname__}"]
    if fn.__module__ != "__main__":  # notebook functions travel by value
        targets.append(f"{fn.__module__}:{fn.__qualname__}")
    for target in targets:
        try:
            client.run_on_scheduler(pkgutil.resolve_name, target)
        except (ImportError, AttributeError) as exc:
            raise SchedulerError(_import_message(address, target, exc)) from None
        except Exception:  # e.g. run_on_scheduler disabled there: the tasks will tell
            return


def wait_for_workers(client, address: str, timeout: float) -> None:
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise SchedulerError(
            f"the Dask scheduler at {address} has no workers after {timeout:g} s: start some "
            f"with `dask worker {address} --nthreads 1`, or raise no_workers_timeout / "
            f"${NO_WORKERS_TIMEOUT_ENV}"
        ) from None


def _address(client) -> str:
    return getattr(client, "scheduler", None) and client.scheduler.address or "<scheduler>"


@dataclass(frozen=True)
class DaskSession:
    """A client checked to be usable: connected, able to import the sweep, with a worker."""

    client: object
    address: str
    no_workers_timeout: float


@contextlib.contextmanager
def dask_session(fn, n_workers, scheduler, *, connect_timeout=None, no_workers_timeout=None):
    """Connect (or start a ``LocalCluster``), check the scheduler imports ``fn`` and has a
    worker; every failure is a :class:`SchedulerError` within the time-outs."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a pinned dependency
        raise ImportError("executor='dask' needs the 'distributed' package") from exc
    connect_timeout = dask_timeout(connect_timeout, CONNECT_TIMEOUT_ENV, "connect_timeout")
    no_workers_timeout = dask_timeout(
        no_workers_timeout, NO_WORKERS_TIMEOUT_ENV, "no_workers_timeout"
    )
    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, Client):
            client = scheduler
            address = _address(client)
        elif scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
            )
            client = stack.enter_context(Client(cluster))
            address = cluster.scheduler_address
        else:
            address = str(scheduler)
            client = stack.enter_context(connect(address, connect_timeout))
        check_scheduler_imports(client, fn, address)
        wait_for_workers(client, address, no_workers_timeout)
        yield DaskSession(client, address, no_workers_timeout)


def run_dask(fn, todo, session: DaskSession, version: str):
    from distributed import wait as dask_wait

    client, address = session.client, session.address
    no_workers_timeout = session.no_workers_timeout
    futures = {
        client.submit(evaluate, fn, point, True, 1, pure=False): (i, point) for i, point in todo
    }
    pending = set(futures)
    workerless_since = None
    try:
        while pending:
            try:
                done, pending = dask_wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                if client.nthreads():
                    workerless_since = None
                elif workerless_since is None:
                    workerless_since = time.monotonic()
                elif time.monotonic() - workerless_since > no_workers_timeout:
                    raise SchedulerError(
                        f"every worker of the Dask scheduler at {address} left and none "
                        f"came back within {no_workers_timeout:g} s; {len(pending)} points "
                        "are unfinished (the finished ones are cached): start workers with "
                        f"`dask worker {address} --nthreads 1` and rerun"
                    ) from None
                continue
            for fut in done:
                i, point = futures[fut]
                try:
                    text, seconds, worker_version, worker_code = fut.result()
                except RuntimeError as exc:
                    if "deserialization" in str(exc):
                        raise SchedulerError(
                            _import_message(address, f"{fn.__module__}.{fn.__qualname__}", exc)
                        ) from None
                    _annotate(exc, point)
                    raise
                except Exception as exc:
                    _annotate(exc, point)
                    raise
                if worker_version != version:
                    raise RuntimeError(
                        f"a Dask worker has asbbook code version {worker_version}, but this "
                        f"sweep was keyed with {version}: install the same asbbook source on "
                        "every worker, and do not edit asbbook's source files while a sweep "
                        "runs (the entries written so far stay valid)"
                    )
                check_worker_code(fn, worker_code)
                yield i, text, seconds
    finally:
        if pending:
            with contextlib.suppress(Exception):
                client.cancel(list(pending))
