"""Frozen pretrained models from the Hugging Face hub or a local folder, offline first.

A hub id is looked up in the local cache before any download is tried, and a folder saved
with `save_pretrained` works the same as a hub id. Each model is loaded once per process and
shared: the `clip_text` conditioner and the `clip_score` metric use the same CLIP.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from cvaekit.errors import CvaekitError
from cvaekit.runtime.optional import require

DEFAULT_CLIP = "openai/clip-vit-base-patch32"


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def resolve_pretrained(name: str, what: str, loader):
    """`loader(path, local_files_only)` on a local folder, or on a hub id: from the local
    Hugging Face cache first, then (unless HF_HUB_OFFLINE is set) from the hub. Failure is
    a CvaekitError that says how to get the model."""
    local = Path(name).expanduser()
    if local.exists():
        try:
            with quiet_loading():
                return loader(str(local), True)
        except (OSError, ValueError) as exc:
            raise CvaekitError(f"The {what} folder '{name}' cannot be loaded ({exc}). It must hold "
                               f"a model saved with save_pretrained.") from None
    if _looks_like_path(name):
        raise CvaekitError(f"The {what} folder '{name}' does not exist. Give an existing folder "
                           f"(saved with save_pretrained) or a Hugging Face hub id.")
    try:
        with quiet_loading():
            return loader(name, True)
    except (OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    error = "HF_HUB_OFFLINE is set"
    if not offline:
        try:
            return loader(name, False)
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise CvaekitError(
        f"The {what} '{name}' is not in the local Hugging Face cache and could not be downloaded "
        f"({error}). Download it where there is a network (`hf download {name}`) and copy the "
        f"cache (~/.cache/huggingface) here, or save it with save_pretrained into a folder and "
        f"give that folder's path instead of the hub id: a local path works the same.")


@contextlib.contextmanager
def quiet_loading():
    """transformers' "Loading weights" bar off while a frozen model loads from disk (every
    command of a caption run loads one); a download from the hub keeps its bar."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the loader will say what is missing
        yield
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def load_clip(name: str = DEFAULT_CLIP, needed_for: str = "CLIP"):
    """(CLIPModel, tokenizer), frozen and in eval mode; loaded once per process.

    `needed_for` names the component in the error when transformers is not installed."""
    require("transformers", "text", needed_for)
    return _load_clip(name)


def load_clip_processor(name: str = DEFAULT_CLIP, needed_for: str = "CLIP"):
    """The CLIPProcessor (tokenizer and image processor) saved with a CLIP model."""
    require("transformers", "text", needed_for)
    return _load_clip_processor(name)


@functools.lru_cache(maxsize=4)
def _load_clip(name: str):
    from transformers import AutoTokenizer, CLIPModel

    def loader(path: str, local_only: bool):
        model = CLIPModel.from_pretrained(path, local_files_only=local_only)
        return model, AutoTokenizer.from_pretrained(path, local_files_only=local_only)

    model, tokenizer = resolve_pretrained(name, "CLIP model", loader)
    model.eval().requires_grad_(False)
    return model, tokenizer


@functools.lru_cache(maxsize=4)
def _load_clip_processor(name: str):
    from transformers import CLIPProcessor

    return resolve_pretrained(name, "CLIP processor",
                              lambda path, local_only: CLIPProcessor.from_pretrained(path, local_files_only=local_only))
