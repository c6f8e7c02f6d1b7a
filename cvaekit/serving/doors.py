"""Who can reach the `cvaekit serve` page: the address it listens on, and the users and
passwords it asks for (Gradio's login), checked before any run is loaded.

The page listens on 127.0.0.1 (this machine only) unless told otherwise; told an address
other machines can reach, it says so and suggests a password. Nothing here imports Gradio.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from cvaekit.errors import CvaekitError

AUTH_FORM = "USER:PASSWORD"


def is_local(host: str) -> bool:
    """Whether `host` is reachable only from this machine (a loopback address or name)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> str:
    """`host` as an address to bind: a name or IP address, no spaces, not empty."""
    host = host.strip()
    if not host or any(c.isspace() or c in "/@?#" for c in host):
        raise CvaekitError(f"--host '{host}' is not an address to listen on. Use 127.0.0.1 (this machine "
                           f"only, the default), 0.0.0.0 (every network this machine is on) or one of its addresses.")
    return host


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise CvaekitError(f"--port {port} is not a port; use a number from 1 to 65535 (7860 by default).")
    return port


def parse_user(line: str, where: str) -> tuple[str, str]:
    user, colon, password = line.partition(":")
    if not colon or not user.strip() or not password:
        raise CvaekitError(f"{where} is not {AUTH_FORM}: it needs a user name, a colon and a password "
                           f"(the password may hold colons; the name may not).")
    return user.strip(), password


def read_auth(auth: str | None = None, auth_file: str | os.PathLike | None = None) -> list[tuple[str, str]] | None:
    """The (user, password) pairs the page asks for: from `--auth USER:PASSWORD`, or from
    `--auth-file`, one USER:PASSWORD a line (blank lines and # comments skipped); None for
    an open page."""
    if auth is not None and auth_file is not None:
        raise CvaekitError("Give --auth or --auth-file, not both.")
    if auth is not None:
        return [parse_user(auth, "--auth")]
    if auth_file is None:
        return None
    path = Path(auth_file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = "it is not a file" if path.is_dir() else getattr(exc, "strerror", None) or type(exc).__name__
        raise CvaekitError(f"Cannot read --auth-file '{path}' ({reason}). It holds one {AUTH_FORM} a line.") from None
    lines = [(i, line.rstrip("\r\n")) for i, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise CvaekitError(f"--auth-file '{path}' holds no {AUTH_FORM} line.")
    return [parse_user(line, f"Line {i} of --auth-file '{path}'") for i, line in lines]


def open_warning(host: str, auth: list | None) -> str | None:
    """What to say before serving on `host`: nothing for this machine only; that the page is
    reachable from the network otherwise, with a password or suggesting one."""
    if is_local(host):
        return None
    if auth:
        return (f"The page listens on {host}: anyone on the network who can reach this machine can open it; "
                f"it asks for a user and password ({len(auth)} user{'s' if len(auth) > 1 else ''}). "
                f"It is plain HTTP, so use it on networks you trust.")
    return (f"The page listens on {host}: anyone on the network who can reach this machine can use it, "
            f"with no password. Add --auth USER:PASSWORD (or --auth-file FILE) to ask for one, "
            f"or serve on 127.0.0.1 (the default) for this machine only.")
