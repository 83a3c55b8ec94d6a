"""Download-and-verify for dataset files, with a local-copy override and a mirror.

Where a file comes from, in order:

1. a local copy in ``data_dir=`` (or ``$DGMBENCH_DATA_DIR``): ``<data_dir>/<file>`` or
   ``<data_dir>/<dataset>/<file>``; it is verified and used in place (never copied);
2. the cache ``$DGMBENCH_HOME/datasets/<dataset>/<file>`` (``$DGMBENCH_HOME`` defaults to
   ``~/.cache/dgmbench``); it is verified (once per process);
3. a download from ``mirror=`` (or ``$DGMBENCH_MIRROR``), tried as ``<mirror>/<dataset>/<file>``
   then ``<mirror>/<file>``, or else from the dataset's official URLs.

A download is written to a temporary ``.part`` file in the cache folder, checked against
its expected length and checksum, and only then renamed into place: an interrupted or
corrupt download never leaves a file in the cache. When every source fails, the one-line
error names the URLs tried, the expected checksum and where to put the file by hand.

Checksums are strings ``"<algo>:<hex>"`` (``md5`` or ``sha256``) of the file's bytes, or
``"gunzip:<algo>:<hex>"`` of a gzip file's *uncompressed* content (MNIST uses this, so
the official archive and any recompressed copy of the same content both pass). The
official values are the defaults; they can be replaced per call with ``checksums=``
(``{filename: checksum}``) or through ``$DGMBENCH_CHECKSUMS``, the path of a JSON file
``{"<dataset>/<filename>": checksum}`` (for private mirrors holding different files, and
for tests that serve made-up files).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import ChecksumError, DataError, UsageError

ENV_HOME = "DGMBENCH_HOME"
ENV_DATA_DIR = "DGMBENCH_DATA_DIR"
ENV_MIRROR = "DGMBENCH_MIRROR"
ENV_CHECKSUMS = "DGMBENCH_CHECKSUMS"

CHUNK = 1 << 20
TIMEOUT_S = 60.0

# files verified in this process, keyed by (path, size, mtime_ns, checksum): re-loading a
# dataset does not re-hash it
_VERIFIED: set[tuple[str, int, int, str]] = set()


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name, official URLs and expected checksum."""

    dataset: str
    filename: str
    checksum: str
    urls: tuple[str, ...]  # official download URLs, tried in order


def dgmbench_home() -> Path:
    """``$DGMBENCH_HOME`` or ``~/.cache/dgmbench``."""
    return Path(os.environ.get(ENV_HOME) or Path.home() / ".cache" / "dgmbench").expanduser()


def cache_dir(dataset: str, home: str | os.PathLike | None = None) -> Path:
    """The folder holding ``dataset``'s downloaded files: ``<home>/datasets/<dataset>``."""
    return Path(home).expanduser() / "datasets" / dataset if home else dgmbench_home() / "datasets" / dataset


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir`` or ``$DGMBENCH_DATA_DIR`` (None when neither is set); must be a folder."""
    value = data_dir if data_dir is not None else os.environ.get(ENV_DATA_DIR)
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "data_dir" if data_dir is not None else f"${ENV_DATA_DIR}"
        raise DataError(f"{source} {path} is not a folder; point it at the folder holding the dataset files")
    return path


def resolve_mirror(mirror: str | None) -> str | None:
    """``mirror`` or ``$DGMBENCH_MIRROR`` without a trailing slash (None when neither is set)."""
    value = mirror if mirror is not None else os.environ.get(ENV_MIRROR)
    return value.rstrip("/") if value else None


def checksum_overrides(dataset: str, checksums: Mapping[str, str] | None = None) -> dict[str, str]:
    """Checksum overrides for ``dataset``: ``$DGMBENCH_CHECKSUMS`` entries, then ``checksums``."""
    out: dict[str, str] = {}
    env = os.environ.get(ENV_CHECKSUMS)
    if env:
        try:
            table = json.loads(Path(env).read_text())
        except (OSError, ValueError) as e:
            raise UsageError(f"${ENV_CHECKSUMS}={env}: cannot read it as a JSON file ({e})") from e
        if not isinstance(table, dict):
            raise UsageError(f"${ENV_CHECKSUMS}={env}: expected a JSON object {{\"dataset/file\": \"md5:...\"}}")
        prefix = dataset + "/"
        out.update({k[len(prefix):]: str(v) for k, v in table.items() if k.startswith(prefix)})
    out.update(checksums or {})
    for spec in out.values():
        parse_checksum(spec)
    return out


def with_overrides(files: Sequence[RemoteFile], checksums: Mapping[str, str] | None) -> list[RemoteFile]:
    """``files`` with their checksums replaced by the overrides for their dataset."""
    if not files:
        return []
    table = checksum_overrides(files[0].dataset, checksums)
    return [replace(f, checksum=table[f.filename]) if f.filename in table else f for f in files]


def parse_checksum(spec: str) -> tuple[bool, str, str]:
    """``"[gunzip:]algo:hex"`` -> (gunzip, algo, hex)."""
    parts = spec.lower().split(":")
    gunzip = parts[0] == "gunzip"
    if gunzip:
        parts = parts[1:]
    if len(parts) != 2 or parts[0] not in ("md5", "sha256") or not parts[1]:
        raise UsageError(f"bad checksum '{spec}': expected 'md5:<hex>', 'sha256:<hex>' or 'gunzip:md5:<hex>'")
    return gunzip, parts[0], parts[1]


def describe_checksum(spec: str) -> str:
    """Human wording: 'md5 ab12...' or 'md5 ab12... of the uncompressed content'."""
    gunzip, algo, hexdigest = parse_checksum(spec)
    return f"{algo} {hexdigest}" + (" of the uncompressed content" if gunzip else "")


def compute_checksum(path: str | os.PathLike, spec: str) -> str:
    """The checksum of ``path`` in the same form as ``spec`` (``[gunzip:]algo:hex``).

    Raises :class:`ChecksumError` when ``spec`` asks for the uncompressed content and the
    file is not a valid gzip file.
    """
    gunzip, algo, _ = parse_checksum(spec)
    h = hashlib.new(algo)
    opener = gzip.open if gunzip else open
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except (OSError, EOFError, zlib.error) as e:
        if not gunzip:
            raise DataError(f"cannot read {path}: {e}") from e
        raise ChecksumError(f"{path} is not a valid gzip file ({type(e).__name__}: {e})") from e
    return ("gunzip:" if gunzip else "") + f"{algo}:{h.hexdigest()}"


def verify_file(path: str | os.PathLike, spec: str, *, what: str | None = None) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has checksum ``spec``."""
    path = os.fspath(path)
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns, spec.lower())
    if key in _VERIFIED:
        return
    try:
        got = compute_checksum(path, spec)
    except ChecksumError as e:
        cause = e.__cause__
        raise ChecksumError(
            f"{what or path} is not a valid gzip file ({type(cause).__name__}: {cause}), expected "
            f"{describe_checksum(spec)}; the file is corrupt or incomplete"
        ) from e
    if got != spec.lower():
        raise ChecksumError(
            f"{what or path} has {describe_checksum(got)}, expected {describe_checksum(spec)}; "
            "the file is corrupt, incomplete or a different version"
        )
    _VERIFIED.add(key)


def _candidate_urls(f: RemoteFile, mirror: str | None) -> list[str]:
    if mirror:
        return [f"{mirror}/{f.dataset}/{f.filename}", f"{mirror}/{f.filename}"]
    return list(f.urls)


def _download_to(url: str, dest: Path, *, progress: bool | None, timeout: float, desc: str = "") -> None:
    """Stream ``url`` into ``dest``; raise ``_Interrupted`` when fewer bytes than announced arrive."""
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "dgmbench"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        length = resp.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        done = 0
        disable = (not progress) if progress is not None else None
        with open(dest, "wb") as out, tqdm(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=desc or dest.name,
            disable=disable, leave=False,
        ) as bar:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
    if expected is not None and done != expected:
        raise _Interrupted(f"the transfer was interrupted after {done:,} of {expected:,} bytes")


class _Interrupted(Exception):
    pass


def fetch(
    f: RemoteFile,
    *,
    data_dir: str | os.PathLike | None = None,
    mirror: str | None = None,
    home: str | os.PathLike | None = None,
    progress: bool | None = None,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Return the path of a verified copy of ``f`` (local copy, cache, or fresh download)."""
    local_dir = resolve_data_dir(data_dir)
    if local_dir is not None:
        for cand in (local_dir / f.filename, local_dir / f.dataset / f.filename):
            if cand.is_file():
                verify_file(cand, f.checksum)
                return cand

    folder = cache_dir(f.dataset, home)
    target = folder / f.filename
    if target.is_file():
        try:
            verify_file(target, f.checksum)
        except ChecksumError as e:
            raise ChecksumError(f"{e} (cached copy: delete {target} and rerun to download it again)") from e
        return target

    mirror = resolve_mirror(mirror)
    urls = _candidate_urls(f, mirror)
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    checksum_failed = False
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{f.filename}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _download_to(url, tmp, progress=progress, timeout=timeout, desc=f"{f.dataset}/{f.filename}")
            verify_file(tmp, f.checksum, what=f"the file downloaded from {url}")
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o644 & ~umask)  # mkstemp makes 0600 files; cached data is world-readable as usual
            os.replace(tmp, target)
            st = target.stat()
            _VERIFIED.add((os.path.abspath(target), st.st_size, st.st_mtime_ns, f.checksum.lower()))
            return target
        except ChecksumError as e:
            checksum_failed = True
            failures.append(str(e))
        except urllib.error.HTTPError as e:
            failures.append(f"{url}: HTTP {e.code} {e.reason}")
        except urllib.error.URLError as e:
            failures.append(f"{url}: {e.reason}")
        except _Interrupted as e:
            failures.append(f"{url}: {e}")
        except (http.client.HTTPException, OSError) as e:  # resets, timeouts, refused connections
            failures.append(f"{url}: {type(e).__name__}: {e}")
        finally:
            if tmp.exists():
                tmp.unlink()
    if checksum_failed:
        raise ChecksumError(
            f"{f.dataset}: no valid copy of {f.filename} could be downloaded ({'; '.join(failures)}); "
            f"nothing was written to {folder}"
        )
    where = f"the mirror {mirror}" if mirror else "the official URLs"
    raise DataError(
        f"{f.dataset}: cannot download {f.filename} from {where} ({'; '.join(failures)}); nothing was kept "
        f"in the cache, rerun to retry. Expected {describe_checksum(f.checksum)}. To install it by hand, "
        f"download {(f.urls or urls)[0]} and put it at "
        f"{target}, or put it in a folder passed as --data-dir / ${ENV_DATA_DIR} "
        f"(or set ${ENV_MIRROR} / --mirror to a reachable copy)"
    )


def fetch_all(files: Sequence[RemoteFile], **kw) -> list[Path]:
    """:func:`fetch` every file; return their paths in order."""
    return [fetch(f, **kw) for f in files]
