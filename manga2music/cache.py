"""The model cache: what is downloaded, how big it is, fetching and deleting it.

Weights live in :func:`manga2music.settings.model_cache_dir` in the Hugging Face
cache layout (``models--owner--name/{blobs,snapshots,refs}``), so
``from_pretrained(cache_dir=...)`` and ``huggingface_hub`` share it.  Scanning
needs no ``huggingface_hub`` import: we read the folders ourselves (a few ms);
only :func:`pull` imports it.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

from . import settings
from .errors import CacheError, ModelUnavailableError
from .registry import MODELS, ModelSpec, hub_repo, lookup

#: weight formats from_pretrained never reads for PyTorch; skipped by pull()
_NEVER_NEEDED = ["*.msgpack", "*.h5", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "*.gguf",
                 "flax_model*", "tf_model*", "rust_model*", "coreml/*", "onnx/*"]
#: PyTorch pickles, skipped when the repo also has safetensors (same weights, twice the download)
_PICKLED_WEIGHTS = ["pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
T = TypeVar("T")


@dataclass
class CachedModel:
    """One repo folder in the cache."""

    repo_id: str  # "facebook/musicgen-small"
    path: str  # the models--owner--name folder
    size_bytes: int  # bytes on disk (symlinks not counted twice)
    complete: bool  # its current snapshot is whole (_snapshot_is_whole), and no download is half done
    name: Optional[str] = None  # our short name, when the registry knows the id


def repo_folder_name(repo_id: str) -> str:
    """``facebook/musicgen-small`` -> ``models--facebook--musicgen-small`` (the Hub cache layout)."""
    return "models--" + repo_id.replace("/", "--")


def repo_id_from_folder(folder: str) -> Optional[str]:
    """The inverse of :func:`repo_folder_name`; None for folders that are not model repos."""
    if not folder.startswith("models--"):
        return None
    return folder[len("models--"):].replace("--", "/")


def _cache(cache_dir: str | os.PathLike | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else settings.model_cache_dir()


def folder_size(path: Path) -> int:
    """Bytes under ``path``, counting real files only (snapshot symlinks point at blobs)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not os.path.islink(p):
                total += st.st_size
    return total


def current_snapshot(repo_dir: Path) -> Optional[Path]:
    """The snapshot a load from the cache takes: the one ``refs/main`` names (an update stopped half-way leaves it
    without its weights, though an older snapshot beside it is whole), else the only or newest one there."""
    snapshots = repo_dir / "snapshots"
    try:
        named = (repo_dir / "refs" / "main").read_text(encoding="ascii").strip()
    except (OSError, UnicodeError):
        named = ""
    if named and "/" not in named and (snapshots / named).is_dir():
        return snapshots / named
    try:
        found = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    return found[-1] if found else None


def _snapshot_is_whole(snap: Path) -> bool:
    """A transformers model: ``config.json`` and weights.  A diffusers pipeline: ``model_index.json``, a folder for
    each of its components (its transformer, VAE, text encoder, tokenizer, scheduler), and weights among them.
    Either way every shard its weights' index lists, and no weight file the loaders read whose link leads to a
    blob that is gone (deleted by hand); another file's (a README, the .bin copy beside the safetensors, which a
    pull does not fetch back) does not matter."""
    from .registry import loaded_weight_files, missing_shards

    try:
        if missing_shards(snap) or any(not f.is_file() for f in loaded_weight_files(snap)):
            return False
    except OSError:
        return False
    if (snap / "config.json").exists():
        return any(p.name.endswith(_WEIGHT_SUFFIXES) for p in snap.rglob("*"))
    index = snap / "model_index.json"
    if not index.exists():
        return False
    try:
        components = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError):
        return False
    if not isinstance(components, dict):
        return False
    parts = [k for k, v in components.items() if not k.startswith("_") and isinstance(v, list) and any(v)]
    return all((snap / part).is_dir() for part in parts) and any(
        p.name.endswith(_WEIGHT_SUFFIXES) for part in parts for p in (snap / part).rglob("*"))


def _is_complete(repo_dir: Path) -> bool:
    if _downloads_under_way(repo_dir):
        return False
    snap = current_snapshot(repo_dir)
    return snap is not None and _snapshot_is_whole(snap)


def _unfinished_blobs(repo_dir: Path) -> list[tuple[Path, bool]]:
    """The ``.incomplete`` files in the repo's blobs (huggingface_hub 1.x names them ``ETAG.incomplete``, 2.x
    ``ETAG.XXXXXXXX.incomplete``), each with whether it is a leftover: its blob was finished since (by a later
    download: huggingface_hub 2.x never reuses nor removes a killed download's file), or nothing has written to it
    for an hour (:data:`STALE_DOWNLOAD_S`)."""
    blobs = repo_dir / "blobs"
    try:
        names = [p for p in blobs.iterdir() if p.name.endswith(".incomplete")] if blobs.is_dir() else []
    except OSError:
        return []
    return [(p, (blobs / p.name.split(".", 1)[0]).is_file() or _stale(p)) for p in names]


#: a half-downloaded file not written to for this long belongs to no download under way (one writes all the time):
#: a killed pull's, of a file the Hub has since replaced
STALE_DOWNLOAD_S = 3600


def _stale(path: Path) -> bool:
    import time

    try:
        return time.time() - path.stat().st_mtime > STALE_DOWNLOAD_S
    except OSError:
        return False


def _downloads_under_way(repo_dir: Path) -> bool:
    """Whether a file of the repo is being downloaded, or was left half-downloaded and not fetched since."""
    return any(not finished for _, finished in _unfinished_blobs(repo_dir))


def forget_leftovers(repo_dir: Path) -> int:
    """Remove the leftovers of killed downloads (see :func:`_unfinished_blobs`); the bytes freed."""
    freed = 0
    for path, finished in _unfinished_blobs(repo_dir):
        if finished:
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except OSError:
                pass
    return freed


def _short_names() -> dict[str, str]:
    return {m.model_id: m.name for m in MODELS if m.needs_weights}


def scan(cache_dir: str | os.PathLike | None = None) -> list[CachedModel]:
    """Every ``models--*`` folder in the cache, sorted by repo id; [] when the cache does not exist."""
    root = _cache(cache_dir)
    try:
        entries = sorted(root.iterdir())
    except OSError:  # not there yet, or a folder this user may not read (settings.cache_problem says which)
        return []
    names = _short_names()
    found = []
    for entry in entries:
        repo_id = repo_id_from_folder(entry.name)
        if not repo_id or not os.path.isdir(entry):  # not a model's, or "models--" itself (an empty row)
            continue
        found.append(CachedModel(repo_id, str(entry), folder_size(entry), _readable_and_complete(entry),
                                 names.get(repo_id)))
    return found


def _readable_and_complete(folder: Path) -> bool:
    """:func:`_is_complete`, False where the folder may not be read (another user's cache): its weights cannot load."""
    try:
        return os.path.isdir(folder) and _is_complete(folder)
    except OSError:
        return False


def is_cached(repo_id: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when the weights of ``repo_id`` are fully downloaded in the cache (and may be read)."""
    return _readable_and_complete(_cache(cache_dir) / repo_folder_name(repo_id))


def cached_revision(repo_id: str, cache_dir: str | os.PathLike | None = None) -> Optional[str]:
    """The commit of ``repo_id`` that a load from the cache takes (its ``refs/main``); None when it is not cached."""
    try:
        text = (_cache(cache_dir) / repo_folder_name(repo_id) / "refs" / "main").read_text(encoding="ascii").strip()
    except (OSError, UnicodeError, ValueError):
        return None
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def hub_revision(spec: ModelSpec) -> Optional[str]:
    """The Hub commit whose weights ``spec`` loads here (the cached snapshot), for a record: a Hub model's name does
    not say which of its versions made an output.  None for a local folder (stamped by its weight files instead),
    an API model, builtin, or a model not cached."""
    if not spec.needs_weights or spec.about == "local folder" or "/" not in spec.model_id:
        return None
    return cached_revision(spec.model_id)


def made_by(backend) -> dict:
    """``{"revision": commit}`` of the Hub weights a describer or composer works with now, for the record of what it
    makes (a take or cue kept from an earlier run keeps its own); ``{"served_model": name}`` where a server answered
    as another model than the one asked for (``gpt-4o`` answered by ``gpt-4o-2024-08-06``, an Ollama alias, a
    router's choice: what made the words); ``{"kept_settings": ...}``: a describer's settings given that a rerun
    keeping it keeps (see ``ChatDescriber.kept_settings``); ``{}`` for any other model."""
    revision = backend.revision()
    served = getattr(backend, "served_model", None)  # an API's model as its server named it when it answered
    served = served if isinstance(served, str) and served and served != getattr(backend, "model_name", None) else None
    keeps = getattr(backend, "kept_settings", None)  # a chat describer's: recorded even when empty (see
    # api._keep_reading_settings: a record that has it lists only the settings given)
    return {**({"revision": revision} if revision else {}), **({"served_model": served} if served else {}),
            **({"kept_settings": keeps()} if callable(keeps) else {})}


def load_cache_first(model_id: str, no_network: bool, load: Callable[[bool], T],
                     refused: Optional[Exception] = None) -> T:
    """``load(local_files_only)``.  A model whose weights are whole in the cache is loaded from it without a word to
    the Hub: with no network (and no --offline), huggingface_hub retried every file for minutes (a 1-second track
    from a cached MusicGen took 5.6 minutes and 86 lines of retries).  A cached copy that lacks a file, or a model
    not cached, loads as asked: from the Hub unless ``no_network``, or unless it was ``refused`` (the output
    folder's model kept by a rerun not allowed to download, or offline, or with the Hub out of reach: see
    ``backends.build``), which is raised."""
    if refused is not None or (not no_network and is_cached(model_id)):
        try:
            with _hub_offline():
                return load(True)
        except (OSError, ValueError):
            if refused is not None:
                raise refused from None
            # a file missing from the cached copy: the Hub has it
    return load(no_network)


@contextmanager
def _hub_offline() -> Iterator[None]:
    """huggingface_hub offline while a cached model loads from the cache alone: with local_files_only it still
    asked the Hub for its list of AI agents (``GET /api/agent-harnesses``, for its user-agent header) at every
    load, 3 s more where the Hub cannot be reached, unless telemetry was turned off."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency
        yield
        return
    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def cached_size(repo_id: str, cache_dir: str | os.PathLike | None = None) -> int:
    """Bytes on disk for ``repo_id`` (0 when absent)."""
    folder = _cache(cache_dir) / repo_folder_name(repo_id)
    return folder_size(folder) if os.path.isdir(folder) else 0


def total_size(cache_dir: str | os.PathLike | None = None) -> int:
    """Bytes used by all model repos in the cache."""
    return sum(m.size_bytes for m in scan(cache_dir))


def find_by_name(name: str) -> Optional[ModelSpec]:
    """A registry entry by short name or Hub id, on either side (see :func:`manga2music.registry.lookup`)."""
    return lookup(name)


def repo_id_for(name: str) -> str:
    """The Hub repo behind a short name, ``hf:owner/name`` or ``owner/name`` (:func:`manga2music.registry.hub_repo`)."""
    return hub_repo(name)


def listed_repo_id(name: str, cache_dir: str | os.PathLike | None = None) -> Optional[str]:
    """``name`` when ``models list`` shows it as a cached model's id (``gpt2``, a Hub id from before owners, or
    ``org/team/model``, which :func:`repo_id_for` refuses), so that what the list shows can be removed."""
    bare = name.strip().removeprefix("hf:")
    if not bare or "/" in (bare[0], bare[-1]) or lookup(bare) is not None:  # a short name is the registry's model
        return None
    return bare if os.path.isdir(_cache(cache_dir) / repo_folder_name(bare)) else None


def _ignore_patterns(repo_files: list[str]) -> list[str]:
    patterns = list(_NEVER_NEEDED)
    if any(f.endswith(".safetensors") for f in repo_files):
        patterns += _PICKLED_WEIGHTS
    return patterns


def pull(name: str, cache_dir: str | os.PathLike | None = None, *, offline: bool | None = None,
         hub_timeout: float = 3.0) -> Path:
    """Download ``name`` (short name or Hub id) into the cache; return its snapshot folder.

    Resumes an interrupted download and shows tqdm bars on stderr (huggingface_hub's).
    Raises ModelUnavailableError with one line when offline or when the Hub cannot be reached.
    """
    repo_id = repo_id_for(name)
    root = _cache(cache_dir)
    offline = settings.offline_mode() if offline is None else offline
    if offline and is_cached(repo_id, root):  # there already (a read-only shared cache too)
        return current_snapshot(root / repo_folder_name(repo_id))
    problem = settings.cache_problem(root)
    if problem:
        source = settings.cache_source() if cache_dir is None else "default"
        raise ModelUnavailableError(f"cannot download {repo_id}: the model cache {problem}",
                                    hint=f"point {source} at a folder (`manga2music doctor` shows the cache)"
                                    if source != "default" else "pass a folder as the cache")
    if offline:
        raise ModelUnavailableError(
            f"cannot download {repo_id}: offline mode (HF_HUB_OFFLINE=1 or --offline) and it is not in {root}",
            hint="run `manga2music models pull` without --offline (and with HF_HUB_OFFLINE unset) on a machine "
                 "with internet.")
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise ModelUnavailableError("huggingface_hub is not installed", hint="pip install huggingface_hub") from exc
    from .hub import hub_endpoint, probe_hub
    from .settings import shown_url

    endpoint = hub_endpoint()
    shown = shown_url(endpoint)  # what messages say: a private mirror's user name and password become ***

    def why(exc: BaseException) -> str:
        return _short(exc).replace(endpoint, shown)

    hub = probe_hub(endpoint, timeout=hub_timeout)  # fail in seconds, not after huggingface_hub's retries
    if not hub.reachable:
        raise ModelUnavailableError(
            f"cannot download {repo_id}: the Hugging Face Hub at {shown} is unreachable ({hub.detail})",
            hint="check the network (or HF_ENDPOINT); what is already cached keeps working offline.")
    root.mkdir(parents=True, exist_ok=True)
    try:
        files = HfApi(endpoint=endpoint).list_repo_files(repo_id)
        path = snapshot_download(repo_id, cache_dir=root, endpoint=endpoint, ignore_patterns=_ignore_patterns(files))
    except GatedRepoError as exc:
        raise ModelUnavailableError(f"{repo_id} is gated on the Hub: accept its licence on its page and log in",
                                    hint="huggingface-cli login, or set HF_TOKEN") from exc
    except RepositoryNotFoundError as exc:
        raise ModelUnavailableError(f"{repo_id} was not found on {shown}") from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelUnavailableError(
            f"cannot download {repo_id}: the Hugging Face Hub at {shown} is unreachable ({why(exc)})",
            hint="check the network (or HF_ENDPOINT); what is already cached keeps working offline.") from exc
    except ValueError as exc:  # JSONDecodeError: an HTML page where the Hub's JSON should be
        if not isinstance(exc, json.JSONDecodeError):  # huggingface_hub's HFValidationError: "owner/a--b"
            raise ModelUnavailableError(f"cannot download {repo_id}: {why(exc)}") from exc
        raise ModelUnavailableError(
            f"cannot download {repo_id}: what answers at {shown} is not the Hub (a network's login page, or a "
            "proxy's?)", hint="log in to the network in a browser, or check HF_ENDPOINT; what is already cached keeps "
                              "working offline.") from exc
    except (KeyError, TypeError) as exc:  # JSON that is not the Hub's answer ({} or [] for a model's info: a
        # mirror or proxy of something else), read by huggingface_hub: its traceback ended in KeyError: 'id'
        raise ModelUnavailableError(
            f"cannot download {repo_id}: what answers at {shown} does not answer as the Hub does ({type(exc).__name__}: "
            f"{why(exc)})", hint="check HF_ENDPOINT; what is already cached keeps working offline.") from exc
    except Exception as exc:  # httpx errors and friends: still one line
        if type(exc).__module__.startswith(("httpx", "httpcore", "requests", "urllib3")):
            raise ModelUnavailableError(
                f"cannot download {repo_id}: the Hugging Face Hub at {shown} is unreachable ({why(exc)})",
                hint="check the network (or HF_ENDPOINT); what is already cached keeps working offline.") from exc
        raise
    forget_leftovers(root / repo_folder_name(repo_id))  # an earlier pull's, killed: its files are whole now
    return Path(path)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def remove(name: str, cache_dir: str | os.PathLike | None = None) -> int:
    """Delete the cache folder of ``name``; return the bytes freed (0 when it was not cached).  Raises
    :class:`CacheError` when it cannot be deleted (nothing was: the folder is first moved out of the cache, in one
    step), or when part of it could not be (the model is gone from the cache, and the message says where the rest
    is): a read-only cache was left half deleted, its snapshots gone and its blobs there, listed as "partial"."""
    root = _cache(cache_dir)
    repo_id = listed_repo_id(name, root) or repo_id_for(name)
    folder = root / repo_folder_name(repo_id)
    if not os.path.isdir(folder):
        return 0
    size = folder_size(folder)
    going = root / f".deleting-{folder.name}-{os.getpid()}"  # not models--*: never listed, never loaded
    try:
        os.rename(folder, going)
    except OSError as exc:
        raise CacheError(f"cannot delete {repo_id} from {root}: {exc.strerror or exc}; nothing was deleted",
                         hint="the cache is read-only here (a shared or mounted cache?), or this user may not "
                              "change it") from None
    failures: list[OSError] = []
    shutil.rmtree(going, onerror=lambda _f, _p, info: failures.append(info[1]))
    if failures:
        left = folder_size(going) if os.path.isdir(going) else 0
        first = failures[0]
        raise CacheError(f"{repo_id} is out of the model cache, but {left / 1024**2:.1f} MB of it could not be "
                         f"deleted from {going} ({first.strerror or first}: {getattr(first, 'filename', '')})",
                         hint="delete that folder by hand (a file there may be immutable: lsattr shows it)")
    return size


def disk_free_bytes(path: str | os.PathLike | None = None) -> int:
    """Free bytes on the disk that holds ``path`` (the nearest existing parent)."""
    p = Path(path) if path is not None else settings.model_cache_dir()
    p = p.expanduser().absolute()
    while not os.path.exists(p) and p.parent != p:  # os.path: a folder this user may not enter is not there to it
        p = p.parent
    return shutil.disk_usage(p).free
