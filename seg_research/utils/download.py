"""Turn ``MODEL.WEIGHTS`` into a local file: local paths, ``http(s)://`` URLs, ``detectron2://`` names.

URLs are downloaded once into a per-user cache (:func:`get_cache_dir`) as
``<cache>/<host>[_<port>]/<url path>`` and read from there afterwards, without network.
``detectron2://<path>`` names a file of detectron2's public model zoo
(``DETECTRON2_URL_PREFIX + <path>``).

The download itself is iopath's (:func:`iopath.common.download.download`: urllib with a
tqdm progress bar). It runs inside a private temporary folder beside the final file; the
file is checked (non-empty, complete, hash suffix) and fsynced there and only then renamed
into place, so an interrupted or corrupt download never appears at the cached path.
"""
from __future__ import annotations

import glob
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import urllib.error
from typing import Optional
from urllib.parse import unquote, urlparse

from iopath.common.download import download as _iopath_download
from iopath.common.file_io import file_lock

__all__ = [
    "DETECTRON2_URL_PREFIX",
    "WeightsDownloadError",
    "WeightsHashMismatchError",
    "cached_path_for_url",
    "get_cache_dir",
    "resolve_weights",
    "weights_url",
]

logger = logging.getLogger(__name__)

# Read at call time, so a test (or a mirror) can point it elsewhere.
DETECTRON2_URL_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"
DETECTRON2_SCHEME = "detectron2://"
_URL_SCHEMES = ("http://", "https://")
# torchvision / torch.hub naming: ``resnet50-0676ba61.pth`` carries a prefix of the file's sha256.
_HASH_SUFFIX = re.compile(r"-([0-9a-f]{8,64})\.")
_PART_SUFFIX = ".part"


class WeightsDownloadError(RuntimeError):
    """Weights named by a URL could not be downloaded; the message names the URL and the cache path."""


class WeightsHashMismatchError(WeightsDownloadError):
    """The downloaded file's sha256 does not start with the hash in its name."""


def get_cache_dir() -> str:
    """``$SEG_RESEARCH_CACHE`` if set (and non-empty), else ``~/.cache/seg_research``; ``~`` expanded."""
    return os.path.expanduser(os.environ.get("SEG_RESEARCH_CACHE") or "~/.cache/seg_research")


def weights_url(path: str) -> Optional[str]:
    """The URL ``path`` names (``detectron2://`` mapped onto :data:`DETECTRON2_URL_PREFIX`),
    or ``None`` for a local path."""
    if path.startswith(DETECTRON2_SCHEME):
        return DETECTRON2_URL_PREFIX + path[len(DETECTRON2_SCHEME) :].lstrip("/")
    if path.startswith(_URL_SCHEMES):
        return path
    return None


def cached_path_for_url(url: str, *, cache_dir: Optional[str] = None) -> str:
    """Where ``url`` is (or will be) cached: ``<cache>/<host>[_<port>]/<url path>``.

    The query string and fragment are ignored; ``.``/``..`` segments are dropped so the
    result stays inside the cache folder. Raises ``ValueError`` for a URL without a file name.
    """
    parsed = urlparse(url)
    segments = [unquote(s) for s in parsed.path.split("/")]
    segments = [s for s in segments if s not in ("", ".", "..") and "/" not in s and "\\" not in s]
    if not parsed.hostname or not segments or parsed.path.endswith("/"):
        raise ValueError(f"Cannot derive a file name from the weights URL '{url}': it must end with a file name.")
    host = parsed.hostname + (f"_{parsed.port}" if parsed.port else "")
    return os.path.join(cache_dir or get_cache_dir(), host, *segments)


def resolve_weights(path: str, *, cache_dir: Optional[str] = None) -> str:
    """Return a local file for ``path`` (a ``MODEL.WEIGHTS`` value).

    * Local paths (anything not ``http://``, ``https://`` or ``detectron2://``) are returned
      unchanged, existing or not.
    * ``detectron2://<p>`` means ``DETECTRON2_URL_PREFIX + <p>``.
    * A URL is downloaded once to :func:`cached_path_for_url` (under ``cache_dir``, default
      :func:`get_cache_dir`); later calls return that file without touching the network.
      Concurrent callers are serialised by a lock file (``<cached path>.lock``).

    Raises :class:`WeightsDownloadError` (network or HTTP error, truncated or empty body)
    naming the URL and the cache path where the file may be put by hand, and
    :class:`WeightsHashMismatchError` when the name carries a torchvision-style hash
    (``name-<8+ hex>.ext``) that the download's sha256 does not start with.
    """
    url = weights_url(path)
    if url is None:
        return path
    cached = cached_path_for_url(url, cache_dir=cache_dir)
    if os.path.isfile(cached):
        return cached
    source = url if url == path else f"{url} (from '{path}')"
    try:
        with file_lock(cached):
            if os.path.isfile(cached):  # another process finished it while we waited
                return cached
            _remove_stale_parts(cached)
            _download_atomic(url, cached, source)
    except OSError as e:  # the lock, the temporary folder or the rename; download errors are ours already
        raise WeightsDownloadError(
            f"Cannot write the cache file '{cached}' for {source}: {e}. "
            "Set $SEG_RESEARCH_CACHE to a writable folder."
        ) from e
    logger.info(f"Downloaded {source} to {cached}")
    return cached


def _remove_stale_parts(cached: str) -> None:
    """Temporary folders of downloads of ``cached`` killed before they finished (we hold its lock)."""
    pattern = os.path.join(glob.escape(os.path.dirname(cached)), "." + glob.escape(os.path.basename(cached)) + ".*")
    for stale in glob.glob(pattern + _PART_SUFFIX):
        shutil.rmtree(stale, ignore_errors=True)


def _download_atomic(url: str, cached: str, source: str) -> None:
    directory, name = os.path.split(cached)
    part_dir = tempfile.mkdtemp(prefix=f".{name}.", suffix=_PART_SUFFIX, dir=directory)
    try:
        try:
            tmp = _iopath_download(url, part_dir, filename=name, progress=True)
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise WeightsDownloadError(
                f"Cannot download {source}: {_reason(e)}.\nWithout network, fetch the file elsewhere and put "
                f"it at '{cached}' (used as is, no network needed), or set MODEL.WEIGHTS to a local file."
            ) from e
        _check_hash(tmp, url, source)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, cached)
    finally:
        shutil.rmtree(part_dir, ignore_errors=True)


def _check_hash(file: str, url: str, source: str) -> None:
    match = _HASH_SUFFIX.search(os.path.basename(urlparse(url).path))
    if match is None:
        return
    expected = match.group(1)
    sha256 = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha256.update(block)
    actual = sha256.hexdigest()
    if not actual.startswith(expected):
        raise WeightsHashMismatchError(
            f"Downloaded {source}, but its sha256 is {actual}, which does not start with '{expected}' "
            "(the hash in its file name). The download is corrupt or the file changed on the server; "
            "it was deleted. Retry, or check the URL."
        )


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.ContentTooShortError):
        return "the connection closed before the whole file arrived (truncated download)"
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"{e.reason}"
    return f"{type(e).__name__}: {e}"
