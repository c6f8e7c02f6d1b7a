"""Helpers for tests and scripts that start a server on this machine: a free port, and a
Playwright route that lets a page reach that server and nothing else."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_local(route):
    """Let the page reach the local server (and its data: and blob: URLs) and nothing else."""
    url = route.request.url
    local = url.startswith(("http://127.0.0.1", "data:", "blob:"))
    return route.continue_() if local else route.abort()
