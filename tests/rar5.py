"""Write RAR 5.0 archives whose files are stored (not compressed), for tests: no free tool writes RAR.

Built from the format's public description (RARLAB's "RAR 5.0 archive format" technote): a signature, a main
archive header, one file header and its data per file, and an end-of-archive header; every header starts with
the CRC32 of the rest of it.  Readers (libarchive's bsdtar, unrar) read such an archive as one from WinRAR with
"Store" chosen.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIGNATURE = b"Rar!\x1a\x07\x01\x00"


def _vint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _header(fields: bytes) -> bytes:
    """CRC32, size, then ``fields`` (which start with the header type)."""
    body = _vint(len(fields)) + fields
    return struct.pack("<I", zlib.crc32(body)) + body


def write_rar5(path: Path, files: dict[str, bytes]) -> Path:
    """An archive at ``path`` holding ``files`` (name inside the archive -> bytes), in that order."""
    out = bytearray(SIGNATURE)
    out += _header(_vint(1) + _vint(0) + _vint(0))  # main archive header: no flags
    for name, data in files.items():
        encoded = name.encode("utf-8")
        fields = (_vint(2) + _vint(0x0002) + _vint(len(data))  # a file header with a data area
                  + _vint(0x0004) + _vint(len(data)) + _vint(0o100644)  # file flags (CRC32 present), size, mode
                  + struct.pack("<I", zlib.crc32(data))
                  + _vint(0)  # compression: version 0, method 0 = store
                  + _vint(1)  # host OS: Unix
                  + _vint(len(encoded)) + encoded)
        out += _header(fields) + data
    out += _header(_vint(5) + _vint(0) + _vint(0))  # end of archive
    path.write_bytes(bytes(out))
    return path


def _read_vint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def renamed(data: bytes, names: dict[str, str]) -> bytes:
    """``data`` (a RAR 5 archive) with files renamed (old -> new name of the same length in UTF-8), each header's
    CRC32 made again.  The files' data is left as it is (so an encrypted archive stays encrypted)."""
    out, pos = bytearray(data[:len(SIGNATURE)]), len(SIGNATURE)
    while pos < len(data):
        size, fields_at = _read_vint(data, pos + 4)
        fields = bytearray(data[fields_at:fields_at + size])
        kind, at = _read_vint(fields, 0)
        flags, at = _read_vint(fields, at)
        if flags & 0x0001:
            _, at = _read_vint(fields, at)
        data_size = 0
        if flags & 0x0002:
            data_size, at = _read_vint(fields, at)
        for old, new in names.items():
            if kind == 2 and old.encode() in fields:
                assert len(old.encode()) == len(new.encode())
                fields = fields.replace(old.encode(), new.encode(), 1)
        out += _header(bytes(fields)) + data[fields_at + size:fields_at + size + data_size]
        pos = fields_at + size + data_size
    return bytes(out)
