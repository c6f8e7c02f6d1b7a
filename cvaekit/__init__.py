"""cvaekit: text-to-image conditional VAEs from plugins and YAML recipes."""

from importlib.metadata import PackageNotFoundError, version

from .threads import choose_thread_settings

choose_thread_settings()  # before anything imports torch

from .hookspecs import hookimpl  # noqa: E402

try:
    __version__ = version("cvaekit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__", "hookimpl"]
