"""Helpers for tests and scripts that start a server on this machine: a free port, and a
Playwright route that lets a page reach that server and nothing else."""

from __future__ import annotations

from cvaekit.runtime.ports import free_port

__all__ = ["free_port", "only_local"]


def only_local(route):
    """Let the page reach the local server (and its data: and blob: URLs) and nothing else."""
    url = route.request.url
    local = url.startswith(("http://127.0.0.1", "data:", "blob:"))
    return route.continue_() if local else route.abort()
