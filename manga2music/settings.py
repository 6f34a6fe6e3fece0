"""Where things live: user dirs, the model cache, environment switches, the user's remembered answers.

Model weights go to ``platformdirs.user_cache_dir("manga2music")/models`` unless
``MANGA2MUSIC_CACHE`` is set, or the user already chose a shared Hugging Face
cache with ``HF_HUB_CACHE`` / ``HF_HOME`` (then we use theirs).

Answers a user gave once (today only "may ``auto`` download weights?") are kept in
``settings.json`` in the user config dir (``platformdirs.user_config_dir``:
``~/.config/manga2music`` on Linux; ``MANGA2MUSIC_CONFIG_DIR`` moves it).  A missing,
unreadable or malformed file reads as "nothing remembered", never as an error.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

APP_NAME = "manga2music"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def debug_enabled() -> bool:
    """``MANGA2MUSIC_DEBUG=1``: show full tracebacks."""
    return _truthy(os.environ.get("MANGA2MUSIC_DEBUG"))


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE=1`` (or ``MANGA2MUSIC_OFFLINE=1``): never touch the network for weights."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("MANGA2MUSIC_OFFLINE"))


def no_network() -> bool:
    """``MANGA2MUSIC_OFFLINE=1`` (what ``--offline`` sets): no network at all, APIs included.

    ``HF_HUB_OFFLINE=1`` alone only keeps the Hugging Face Hub away (weights come from the cache).
    """
    return _truthy(os.environ.get("MANGA2MUSIC_OFFLINE"))


def cudnn_attention_allowed() -> bool:
    """``MANGA2MUSIC_CUDNN_ATTENTION=1``: let torch pick cuDNN attention while decoding (see devices.decoding_attention)."""
    return _truthy(os.environ.get("MANGA2MUSIC_CUDNN_ATTENTION"))


def openai_base_url() -> str | None:
    """``OPENAI_BASE_URL`` when set (an OpenAI-compatible server), else None (the official API)."""
    return (os.environ.get("OPENAI_BASE_URL") or "").strip() or None


def shown_url(url: str | None) -> str | None:
    """``url`` as it may be shown or recorded: a user name and password in it (``http://bob:pw@host/v1``, a server
    behind basic auth) become ``***``."""
    if not url or "@" not in url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


def user_cache_dir() -> Path:
    from platformdirs import user_cache_dir as _ucd

    return Path(_ucd(APP_NAME, appauthor=False))


def model_cache_dir() -> Path:
    """The folder ``from_pretrained(cache_dir=...)`` uses for weights.

    Order: ``MANGA2MUSIC_CACHE``; then ``HF_HUB_CACHE``; then ``HF_HOME/hub``;
    then our own user cache dir.  A relative path is taken from the current folder and returned whole (what
    doctor shows and records hold).
    """
    from .files import from_current_folder

    env = os.environ
    for name, below in (("MANGA2MUSIC_CACHE", ""), ("HF_HUB_CACHE", ""), ("HF_HOME", "hub")):
        if env.get(name):
            given = Path(env[name]).expanduser()
            from_current_folder(given, f"{name}={env[name]}")
            return given.absolute() / below
    return user_cache_dir() / "models"


@dataclass(frozen=True)
class CacheProblem:
    """Why weights cannot be kept in the model cache: ``text`` in words (``str()`` gives it), and whether the
    cache is out of this user's reach altogether (``unreadable``: its weights cannot be seen or loaded either,
    as for a cron job run as another user with ``HOME`` still the owner's), not only closed to new downloads."""

    text: str
    unreadable: bool = False

    def __str__(self) -> str:
        return self.text


def cache_problem(path: "Path | None" = None) -> "CacheProblem | None":
    """Why weights cannot be kept in the model cache (``path``, else :func:`model_cache_dir`); None when they
    can, or when it is not there yet and can be made.  Looks at the disk only."""
    path = model_cache_dir() if path is None else Path(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):  # not there yet (or a file above it: said below)
        info = None
    except OSError as exc:  # a folder above it this user may not enter (HOME another user's, HF_HOME 700)
        return CacheProblem(f"{path} cannot be read here ({exc.strerror or exc})", unreadable=True)
    if info is not None:
        if not stat.S_ISDIR(info.st_mode):
            return CacheProblem(f"{path} is a file, not a folder")
        if not os.access(path, os.R_OK | os.X_OK):  # the cache folder itself (chmod 000)
            return CacheProblem(f"{path} cannot be read here (Permission denied)", unreadable=True)
    there = path
    while not os.path.exists(there) and there.parent != there:
        there = there.parent
    if there != path and not os.path.isdir(there):
        return CacheProblem(f"{path} cannot be made: {there} is a file, not a folder")
    if not os.access(there, os.W_OK | os.X_OK):
        try:
            read_only = bool(os.statvfs(there).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):  # no statvfs (Windows)
            read_only = False
        why = f"{there} is on a read-only file system" if read_only else f"no permission on {there}"
        return CacheProblem(f"{path} cannot be written here ({why})")
    return None


def cache_source() -> str:
    """Which rule chose :func:`model_cache_dir` (for ``doctor`` and ``models path``)."""
    env = os.environ
    for name in ("MANGA2MUSIC_CACHE", "HF_HUB_CACHE", "HF_HOME"):
        if env.get(name):
            return name
    return "default"


# --- remembered answers -----------------------------------------------------------------------

#: the setting that says whether ``auto`` may download weights (True / False; absent: not answered yet)
AUTO_DOWNLOAD = "auto_download"


def parse_bool(value: str | None) -> Optional[bool]:
    """``1/true/yes/on`` -> True, ``0/false/no/off`` -> False, anything else (unset too) -> None."""
    text = (value or "").strip().lower()
    if text in ("1", "true", "yes", "on", "y"):
        return True
    if text in ("0", "false", "no", "off", "n"):
        return False
    return None


def auto_download_env() -> Optional[bool]:
    """``MANGA2MUSIC_AUTO_DOWNLOAD=1`` / ``=0``: let ``auto`` download weights, or never; None when unset."""
    return parse_bool(os.environ.get("MANGA2MUSIC_AUTO_DOWNLOAD"))


def user_config_dir() -> Path:
    """``MANGA2MUSIC_CONFIG_DIR`` if set, else the platform's per-user config folder for manga2music."""
    if os.environ.get("MANGA2MUSIC_CONFIG_DIR"):
        return Path(os.environ["MANGA2MUSIC_CONFIG_DIR"]).expanduser()
    from platformdirs import user_config_dir as _ucd

    return Path(_ucd(APP_NAME, appauthor=False))


def settings_file() -> Path:
    return user_config_dir() / "settings.json"


def load_user_settings() -> dict[str, Any]:
    """Everything remembered; ``{}`` when the file is missing, unreadable or not a JSON object."""
    return read_user_settings()[0]


def read_user_settings() -> tuple[dict[str, Any], Optional[str]]:
    """Everything remembered, and why the file there could not be read (None: it could, or there is none)."""
    data, problem, _ = _read_settings_file()
    return data, problem


def _read_settings_file() -> tuple[dict[str, Any], Optional[str], bool]:
    """:func:`read_user_settings`, and whether the file was read but is broken (not JSON, or not an object):
    such a file may be moved aside; one that cannot be read cannot be moved either."""
    try:
        data = json.loads(settings_file().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None, False
    except OSError as exc:
        return {}, f"cannot be read ({exc.strerror or exc})", False
    except ValueError as exc:
        return {}, f"is not valid JSON ({exc})", True
    if not isinstance(data, dict):
        return {}, f"is not a JSON object ({type(data).__name__})", True
    return data, None, False


def get_setting(name: str, default: Any = None) -> Any:
    return load_user_settings().get(name, default)


def set_setting(name: str, value: Any, *, note: Callable[[str], None] = lambda line: None) -> Path:
    """Remember ``name = value`` (``None`` forgets it); the file is replaced atomically.  Returns its path.

    A settings file linked from elsewhere (a dotfiles folder) stays a link, and the file it points at is written,
    keeping its permissions.  A file that is not a JSON object (a typo in a hand edit) is not written over: it is
    kept beside as ``settings.json.bad`` (``.bad-2``...), and ``note`` hears so.
    Raises ``OSError`` (or a :class:`~manga2music.errors.Manga2MusicError` for a full or read-only disk)
    when the config folder cannot be written.
    """
    from .files import atomic_path, fill

    shown = settings_file()
    path = Path(os.path.realpath(shown))
    try:
        mode = os.stat(path).st_mode & 0o7777  # kept, also when a broken file is moved aside first
    except OSError:
        mode = None
    data, problem, broken = _read_settings_file()
    if broken:
        kept = next(p for p in (path.with_name(f"{path.name}.bad{f'-{k}' if k > 1 else ''}") for k in range(1, 10**6))
                    if not os.path.lexists(p))
        os.replace(path, kept)
        note(f"{shown} {problem}: kept as {kept}, and a new one holds the answer")
    if value is None:
        data.pop(name, None)
    else:
        data[name] = value
    with atomic_path(path) as tmp:
        fill(tmp, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))
        if mode is not None:
            os.chmod(tmp, mode)
    return shown
