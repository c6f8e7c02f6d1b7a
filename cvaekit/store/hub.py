"""Models on the Hugging Face Hub, through `huggingface_hub`: a hub id (`user/name`, or
`user/name@revision`) resolved to a folder in its cache (so it loads offline once
downloaded), and an exported folder pushed as a model repository in one commit."""

from __future__ import annotations

import os
import re
from pathlib import Path

from cvaekit.errors import CvaekitError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(@[\w./-]+)?$")
LOGIN = "log in with `hf auth login` (or set HF_TOKEN)"


def is_hub_id(text: str) -> bool:
    """Whether `text` reads as a hub id and is not a path here: neither it nor its first
    folder exists (so a mistyped `runs/<run>` is a missing folder, never a download)."""
    return bool(HUB_ID.match(str(text))) and not Path(text).exists() and not Path(str(text).split("/")[0]).is_dir()


def split_hub_id(text: str) -> tuple[str, str | None]:
    repo, _, revision = str(text).partition("@")
    return repo, revision or None


def offline() -> bool:
    """HF_HUB_OFFLINE as `huggingface_hub` reads it, but read now, not when it was imported."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_cache() -> str | None:
    """The hub's cache folder from the environment as it is now (None: its own default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    return os.path.join(os.environ["HF_HOME"], "hub") if os.environ.get("HF_HOME") else None


def download(text: str) -> Path:
    """The local folder of the model `text` names, from the hub's cache when it is there
    (always so when offline), else downloaded into it."""
    from huggingface_hub import snapshot_download

    from cvaekit import __version__

    repo, revision = split_hub_id(text)
    where = hub_cache() or "~/.cache/huggingface/hub"
    try:
        return Path(snapshot_download(repo, revision=revision, cache_dir=hub_cache(), local_files_only=offline(),
                                      library_name="cvaekit", library_version=__version__))
    except Exception as exc:  # noqa: BLE001 - each of huggingface_hub's failures becomes one line
        kind = type(exc).__name__
    if kind in ("RepositoryNotFoundError", "GatedRepoError"):
        raise CvaekitError(f"'{repo}' is no folder here and no model on the Hugging Face Hub you can read "
                           f"(a private one needs you to {LOGIN}).") from None
    if kind == "RevisionNotFoundError":
        raise CvaekitError(f"The model '{repo}' on the Hugging Face Hub has no revision '{revision}'.") from None
    how = ("HF_HUB_OFFLINE is set" if offline() else "the Hub could not be reached")
    raise CvaekitError(f"'{text}' is no folder here, and no model in the Hugging Face cache ({where}) while "
                       f"{how}: download it once online (any command that takes it does), or give the path of "
                       f"an exported folder.") from None


def push_folder(folder: Path, repo_id: str, private: bool = False, revision: str | None = None,
                message: str = "Upload a cvaekit model") -> str:
    """Upload `folder` as the model repository `repo_id` (created when new) in one commit;
    return the commit's address. Offline or without a token: one line, nothing uploaded."""
    check_can_push(repo_id)
    from huggingface_hub import HfApi

    api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision, commit_message=message)
    except Exception as exc:  # noqa: BLE001 - a network or permission failure, as one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CvaekitError(f"Could not push to '{repo_id}' on the Hugging Face Hub ({type(exc).__name__}"
                           f"{': ' + first if first else ''}). Nothing was uploaded.") from None
    return str(getattr(info, "commit_url", info))


def check_can_push(repo_id: str) -> None:
    """Before anything is exported: a hub id to push to, not offline, a token."""
    from huggingface_hub import get_token

    if not HUB_ID.match(repo_id) or "@" in repo_id:
        raise CvaekitError(f"'{repo_id}' is not a Hub repository id; give user/name (the revision with --revision).")
    if offline():
        raise CvaekitError("HF_HUB_OFFLINE is set, so nothing can be pushed to the Hugging Face Hub; unset it "
                           "and push again. Nothing was uploaded.")
    if not get_token():
        raise CvaekitError(f"No Hugging Face token found: {LOGIN}, then push again. Nothing was uploaded.")
