"""Resumable download of a dataset archive into the cache, with size, CRC and digest checks."""

import hashlib
import os
import sys
import urllib.error
import urllib.request
import zipfile
import zlib

from .registry import DatasetInfo, base_url


class DatasetDownloadError(RuntimeError):
    """The dataset could not be fetched or did not check out."""


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, target: str, progress=sys.stderr, timeout: float = 30.0) -> None:
    """Download ``url`` to ``target``, resuming a ``target + '.part'`` left by an earlier try."""
    partial = target + ".part"
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the partial file is already whole
            os.replace(partial, target)
            return
        raise
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0
        total = response.headers.get("Content-Range", "").rpartition("/")[2] if resumed else \
            response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = have
        with open(partial, "ab" if resumed else "wb") as out:
            while True:
                block = response.read(1 << 20)
                if not block:
                    break
                out.write(block)
                done += len(block)
                share = f" of {total / 1e6:.1f} MB" if total else ""
                print(f"\rdownloading {os.path.basename(target)}: {done / 1e6:.1f} MB{share}", end="",
                      file=progress, flush=True)
        print(file=progress)
    if total is not None and os.path.getsize(partial) != total:
        raise DatasetDownloadError(f"{url}: got {os.path.getsize(partial)} bytes of {total}; "
                                   "run again to resume the download")
    os.replace(partial, target)


def fetch_dataset(info: DatasetInfo, cache_dir: str, progress=sys.stderr) -> str:
    """Path of ``info.inter_file`` in the cache, downloading and extracting it if needed."""
    folder = os.path.join(cache_dir, info.name)
    inter_path = os.path.join(folder, info.inter_file)
    if os.path.isfile(inter_path):
        return inter_path
    os.makedirs(folder, exist_ok=True)
    archive = os.path.join(folder, os.path.basename(info.archive))
    url = base_url() + info.archive
    if not os.path.isfile(archive):
        try:
            _fetch(url, archive, progress)
        except (urllib.error.URLError, OSError) as error:
            raise DatasetDownloadError(
                f"could not download dataset {info.name!r} from {url} ({error}). If this machine is offline, "
                f"fetch {info.archive} elsewhere and pass --data-path to its {info.inter_file} or its folder."
            ) from None
    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()
            if broken is not None:
                raise zipfile.BadZipFile(f"CRC mismatch in {broken}")
            member = next((m for m in bundle.namelist() if os.path.basename(m) == info.inter_file), None)
            if member is None:
                raise DatasetDownloadError(f"{archive}: no {info.inter_file} inside (has {bundle.namelist()})")
            with bundle.open(member) as source, open(inter_path + ".part", "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    out.write(block)
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        os.remove(archive)
        raise DatasetDownloadError(f"{archive} is corrupt ({error}); it was deleted, run again to download "
                                   "it anew") from None
    if info.inter_sha256 and _sha256(inter_path + ".part") != info.inter_sha256:
        os.remove(inter_path + ".part")
        os.remove(archive)
        raise DatasetDownloadError(f"{info.inter_file} from {url} does not have the known SHA-256; the archive was "
                                   "deleted, run again to download it anew")
    os.replace(inter_path + ".part", inter_path)
    return inter_path
