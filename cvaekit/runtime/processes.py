"""`train.processes`: training in several CPU processes that `cvaekit run` starts itself.

A model of many small operations (shapes_best at 32 px) keeps a CPU's threads waiting on each
other between operations; the same cores used as one single-threaded process each, training
data-parallel (gloo), do more: 1.37x the images/s on 2 cores (docs/performance.md). Each
process takes an equal share of every batch, so `batch_size` stays the step's batch and the
model trained is the same kind as in one process. The recipe's `fit_prior` stage runs in the
same processes afterwards, each fitting on its share of the codes. The processes are fresh
interpreters: they build the model's parts from the installed plugins (entry points), as
`cvaekit run` does.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys

from cvaekit.errors import CvaekitError, RecipeError
from cvaekit.runtime.notices import inherit_clean_warnings
from cvaekit.runtime.ports import free_port

LAUNCHED = "CVAEKIT_PROCESSES"  # set in the processes this module starts
STARTING = "CVAEKIT_STARTING_PROCESSES"  # set in the processes this module starts, from their first moment
UNGUARDED = 86  # how one of them ends when the main script it imports calls `train` at its top level


def end_if_importing_main() -> None:
    """In a process `run_in_processes` started that is still importing the main script (as
    `spawn` does), a call to `train` comes from the script's top level, not from under `if
    __name__ == "__main__":`: end the process quietly; the one that started it says why."""
    if os.environ.get(STARTING) and getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(UNGUARDED)


def unguarded_text(n: int) -> str:
    main = getattr(sys.modules.get("__main__"), "__file__", None) or "your script"
    return (f"'train.processes' ({n}) starts {n} processes, and each imports the main script ('{main}') again; "
            f"there a call to cvaekit.train() at the top level runs again instead of training. Put the call "
            f"under `if __name__ == \"__main__\":` (docs/api.md), or set 'train.processes' to 1. Nothing was trained.")


def launched() -> bool:
    """Whether this process is one of those `run_in_processes` started."""
    return LAUNCHED in os.environ


def check_processes(processes: int, batch_size: int) -> None:
    """A clear error for a `train.processes` that cannot split the batch, or that would start
    processes under torchrun (which starts its own)."""
    if processes == 1 or launched():
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RecipeError("'train.processes' starts its own processes; under torchrun, which starts them "
                          "itself (--nproc_per_node), set it to 1.")
    if batch_size % processes:
        fits = [n for n in range(1, min(batch_size, 64) + 1) if batch_size % n == 0]
        raise RecipeError(f"'train.processes' ({processes}) must divide 'train.batch_size' ({batch_size}): each "
                          f"process takes an equal share of every batch. Valid here: {', '.join(map(str, fits))}.")


def run_in_processes(target, args: tuple, n: int):
    """Call `target(*args)` (a module-level function) in `n` processes on this machine, each
    with its share of the cores and its rank in the environment; return rank 0's result. The
    first `CvaekitError` a process met is raised here."""
    import torch.multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // n)
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": str(n), LAUNCHED: str(n)}
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    os.environ[STARTING] = "1"  # the processes inherit it as they start
    try:
        started = mp.start_processes(_worker, args=(env, threads, target, args, results), nprocs=n, join=False,
                                     start_method="spawn")
    finally:
        os.environ.pop(STARTING, None)
    handler = _passed_on(started.processes)
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not started.join():
            pass
    except mp.ProcessExitedException as exc:
        _raise_first_error(_reported(results))  # a process that aborts at teardown after its error is not the cause
        if exc.exit_code == UNGUARDED:
            raise CvaekitError(unguarded_text(n)) from None
        raise CvaekitError(f"A training process ended with exit code {exc.exit_code} ({exc}). What was saved "
                           f"stays saved; 'cvaekit run --resume RUN' continues the run.") from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    outcomes = _reported(results)
    _raise_first_error(outcomes)
    if 0 not in outcomes:
        raise CvaekitError("The training processes ended without a result; what was saved stays saved.")
    return outcomes[0]


def _reported(results) -> dict:
    """What each process put on the queue before it ended, by rank."""
    outcomes = {}
    while not results.empty():
        rank, outcome = results.get()
        outcomes[rank] = outcome
    return outcomes


def _raise_first_error(outcomes: dict) -> None:
    failed = [o for _, o in sorted(outcomes.items()) if isinstance(o, BaseException)]  # rank 0's first
    if failed:
        raise failed[0]


def _passed_on(processes):
    """A handler for SIGINT and SIGTERM while the trainings run: it passes the signal on to
    them, and each saves and stops after the same step (a terminal's Ctrl-C, which reaches
    them too, counts once). A second Ctrl-C stops this process at once."""
    seen = []

    def handler(signum, frame):
        if seen and signum == signal.SIGINT:
            raise KeyboardInterrupt
        seen.append(signum)
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signum)

    return handler


def _worker(rank: int, env: dict[str, str], threads: int, target, args: tuple, results):
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    os.environ.pop(STARTING, None)  # started: the main script is imported
    inherit_clean_warnings()
    import torch

    torch.set_num_threads(threads)
    try:
        results.put((rank, target(*args)))
    except CvaekitError as exc:
        results.put((rank, exc))
