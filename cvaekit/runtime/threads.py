"""OpenMP settings chosen before torch loads, so that processes sharing the cores share them.

OpenMP's default is to busy-wait between parallel regions: two trainings on one 2-core
machine then run 45x slower each (a twentieth of one run together), and so does a training
beside `cvaekit evaluate`, `generate` or the demo page. Passive waiting costs a lone run
little at 64 px; a model of many small operations loses more when the cores are free
(shapes_best at 32 px: about a quarter of its images/s; the study's MLP: about 40%), but busy
waiting falls 5 to 40 times whenever another job wants the cores, and spinning a little
(GOMP_SPINCOUNT) did not help (docs/performance.md). A value the user set in the environment wins.
"""

from __future__ import annotations

import os

DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def choose_thread_settings(environ: dict[str, str] = os.environ) -> dict[str, str]:
    """Set each default the user has not set; return what was set. Takes effect only if torch
    (its OpenMP runtime) has not been loaded yet in this process."""
    chosen = {k: v for k, v in DEFAULTS.items() if k not in environ}
    environ.update(chosen)
    return chosen


def few_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (M_ARENA_MAX) for a long-lived server of many threads: each
    thread otherwise gets an arena of its own, and memory freed in one is not reused by
    another. Under benchmarks/serve_load.py the page's memory grew 5% from 100 to 1,680
    requests with the cap, about 9% without. False where there is no glibc."""
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(-8, arenas))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False
