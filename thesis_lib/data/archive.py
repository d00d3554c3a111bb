"""Read the files of a tar archive (.tar, .tar.gz, .tgz) into memory without extracting it.

The offline CIFAR-10 copy is a 19 MB .tar.gz of 60,000 small JPEGs. Python's `tarfile` spends
about 1.5 s building 60k `TarInfo` objects on our 2-core CPU; gzip-decompressing the whole archive
(about 90 MB) and walking the 512-byte ustar headers directly takes about 0.3 s. Archives with
features this walker does not handle (pax or GNU long-name headers, sparse files) fall back to
`tarfile`, so the fast path is an optimisation, never a restriction.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

__all__ = ["read_tar_members", "is_tar_path"]

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def is_tar_path(path: str | Path) -> bool:
    return str(path).lower().endswith(_TAR_SUFFIXES)


def _pax_records(data: bytes) -> dict[str, str] | None:
    """Parse pax extended-header records ("<len> key=value\n"); None if malformed."""
    out, i = {}, 0
    try:
        while i < len(data) and data[i : i + 1] != b"\0":
            sp = data.index(b" ", i)
            length = int(data[i:sp])
            key, _, value = data[sp + 1 : i + length - 1].partition(b"=")
            out[key.decode("utf-8")] = value.decode("utf-8", "replace")
            i += length
    except ValueError:
        return None
    return out


def _walk_ustar(raw: bytes) -> dict[str, tuple[int, int]] | None:
    """Map member name -> (offset, size) of each regular file; None if a header needs `tarfile`.

    Handles ustar headers, pax per-file headers carrying a path or size, and pax global headers
    that only carry a comment (what `git archive` writes); anything else falls back.
    """
    members: dict[str, tuple[int, int]] = {}
    override: dict[str, str] = {}
    off, n = 0, len(raw)
    while off + 512 <= n:
        hdr = raw[off : off + 512]
        if hdr.count(0) == 512:  # end-of-archive marker
            break
        size_field = hdr[124:136]
        if size_field[0] & 0x80:  # base-256 size (files > 8 GiB): not in this dataset
            return None
        try:
            size = int(size_field.split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            return None
        kind = hdr[156:157]
        data = off + 512
        nxt = data + (size + 511) // 512 * 512
        if kind in (b"x", b"g"):
            records = _pax_records(raw[data : data + size])
            if records is None or not set(records) <= {"comment", "path", "size", "mtime", "atime", "ctime"}:
                return None
            if kind == b"g":
                if set(records) & {"path", "size"}:
                    return None
            else:
                override = records
            off = nxt
            continue
        name = hdr[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        if hdr[257:262] == b"ustar":
            prefix = hdr[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
            if prefix:
                name = f"{prefix}/{name}"
        if "size" in override:
            size = int(override["size"])
            nxt = data + (size + 511) // 512 * 512
        name = override.get("path", name)
        override = {}
        if kind in (b"0", b"\0", b"7"):
            members[name] = (data, size)
        elif kind not in (b"1", b"2", b"3", b"4", b"5", b"6"):  # GNU long names, sparse files, ...
            return None
        off = nxt
    return members


def read_tar_members(path: str | Path) -> tuple[memoryview, dict[str, tuple[int, int]]]:
    """The decompressed archive, and {member name: (offset, size)} of its regular files.

    `buf[offset:offset + size]` is a member's content (a memoryview slice: no per-file copies).
    """
    path = Path(path)
    blob = path.read_bytes()
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    members = _walk_ustar(blob)
    if members is None:
        import io

        with tarfile.open(fileobj=io.BytesIO(blob)) as tf:
            members = {m.name: (m.offset_data, m.size) for m in tf if m.isfile()}
    return memoryview(blob), members
