"""Order-independent digests of documents and rows, and the keyed pass that names the first difference.

Why a sum of hashes: a server hands documents and rows back in any order, so a collection's
digest is the count plus the sum mod 2^256 of each item's sha256 (its exact bytes: a BSON
document, a COPY text row). Equal digests mean the same multiset of items, whatever the order.

Why a second, keyed pass only on a mismatch: naming the first differing ``_id`` or primary key
needs a per-key table, which for a whole collection could exceed memory. So on a mismatch both
sides are read again into hash buckets of the key (a few hundred sums), then once more for the
first differing bucket only, holding at most ``limits.max_keyed_documents`` keys per side.

Sampling (``[content] sample``) keeps an item when a hash of its key falls below the fraction:
deterministic, and the same on both sides, so a sampled digest still compares like for like.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

from .bson_stream import iter_bson_batches, iter_documents
from .limits import Limits

MODULUS = 1 << 256
SAMPLE_SALT = b"grimoire-drill sample\0"
BUCKET_SALT = b"grimoire-drill bucket\0"
BUCKETS_PER_LIMIT = 4      # buckets per max_keyed_documents of items: a bucket then averages a quarter of the limit
# Sizes of BSON values of fixed length, by type byte (bsonspec.org): double, ObjectId, bool, date,
# null, int32, timestamp, int64, decimal128, min key, max key.
FIXED_VALUE_BYTES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16,
                     0x7F: 0, 0xFF: 0}
LENGTH_PREFIXED = {0x02: 4, 0x0D: 4, 0x0E: 4, 0x03: 0, 0x04: 0, 0x05: 5}  # string, code, symbol; doc, array; binary
ID_ELEMENT = b"_id\x00"
# Re-encoding a decoded value: a uuid.UUID (if a decoder made one) goes back as the subtype 4 it came from.
ENCODING = CodecOptions(uuid_representation=UuidRepresentation.STANDARD)


@dataclass(frozen=True)
class Digest:
    """``count`` items whose sha256 values sum to ``value`` (mod 2^256)."""

    count: int
    value: int

    @property
    def hex(self) -> str:
        return f"{self.value:064x}"

    def as_dict(self) -> dict:
        return {"count": self.count, "sha256_sum": self.hex}


class DigestSum:
    """The running sum of a digest (one per collection or table, or per bucket)."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0

    def add_hash(self, digest: bytes) -> None:
        self.count += 1
        self.total += int.from_bytes(digest, "big")

    def result(self) -> Digest:
        return Digest(self.count, self.total % MODULUS)


class Sampler:
    """Which items a sampled comparison reads: those whose key hashes below ``fraction`` of the range."""

    __slots__ = ("fraction", "_threshold")

    def __init__(self, fraction: float = 1.0):
        self.fraction = fraction
        self._threshold = int(fraction * (1 << 64))

    @property
    def full(self) -> bool:
        return self.fraction >= 1.0

    def keeps(self, key: bytes) -> bool:
        if self.full:
            return True
        return int.from_bytes(hashlib.sha256(SAMPLE_SALT + key).digest()[:8], "big") < self._threshold


def bucket_of(key: bytes, buckets: int, salt: bytes = b"") -> int:
    return int.from_bytes(hashlib.sha256(BUCKET_SALT + salt + key).digest()[:8], "big") % buckets


# --------------------------------------------------------------------------- BSON documents


def bson_id_key(raw: bytes | memoryview) -> bytes:
    """A document's ``_id`` as bytes (its BSON type byte and value), read from the raw document.

    mongod and mongodump put ``_id`` first, so its value is sliced without decoding the document;
    any other layout falls back to a decode. Both sides of a comparison use this, so a key is the
    same bytes wherever the document came from.
    """
    if len(raw) > 9 and raw[5:9] == ID_ELEMENT:
        kind = raw[4]
        size = FIXED_VALUE_BYTES.get(kind)
        if size is None and kind in LENGTH_PREFIXED and len(raw) >= 13:
            size = LENGTH_PREFIXED[kind] + int.from_bytes(raw[9:13], "little")
        if size is not None and 0 <= size and 9 + size <= len(raw) - 1:
            return bytes(raw[4:5]) + bytes(raw[9:9 + size])
    return id_key_of(bson.decode(bytes(raw)))


def id_key_of(document: dict) -> bytes:
    """The key of a decoded document, in the same form as :func:`bson_id_key` (b"" without an _id)."""
    if "_id" not in document:
        return b""
    encoded = bson.encode({"_id": document["_id"]}, codec_options=ENCODING)
    return encoded[4:5] + encoded[9:-1]


def shown_id(key: bytes) -> str:
    """A key from :func:`bson_id_key` as the ``_id`` a person reads (repr of the decoded value)."""
    if not key:
        return "(no _id)"
    body = key[0:1] + ID_ELEMENT + key[1:] + b"\x00"
    try:
        return repr(bson.decode((len(body) + 4).to_bytes(4, "little") + body, codec_options=ENCODING)["_id"])
    except Exception:  # noqa: BLE001 — a key is backup content; show its bytes rather than fail
        return key.hex()


class DocumentDigester:
    """One collection's digest over documents, raw or (the in-process store) re-encoded.

    ``reencode``: hash ``bson.encode`` of each decoded document instead of its raw bytes. Only
    for the simulated engine, which cannot hand back raw BSON, so both sides are re-encoded alike.
    """

    def __init__(self, sampler: Sampler, reencode: bool = False):
        self.sampler = sampler
        self.reencode = reencode
        self.sum = DigestSum()

    def add_raw(self, raw: bytes | memoryview) -> None:
        if self.sampler.full or self.sampler.keeps(bson_id_key(raw)):
            self.sum.add_hash(hashlib.sha256(raw).digest())

    def add_document(self, document: dict) -> None:
        if self.sampler.full or self.sampler.keeps(id_key_of(document)):
            self.sum.add_hash(hashlib.sha256(bson.encode(document, codec_options=ENCODING)).digest())

    def add_batch(self, block: bytes, spans: Iterable[tuple[int, int]], documents: list[dict]) -> None:
        """A batch of the dump reader: ``block`` holds the documents at ``spans``, decoded as ``documents``."""
        if self.reencode:
            for document in documents:
                self.add_document(document)
            return
        view = memoryview(block)
        if self.sampler.full:
            add, sha256 = self.sum.add_hash, hashlib.sha256
            for start, end in spans:
                add(sha256(view[start:end]).digest())
        else:
            for start, end in spans:
                self.add_raw(view[start:end])

    def result(self) -> Digest:
        return self.sum.result()


# --------------------------------------------------------------------------- the keyed pass

Keyed = Iterator[tuple[bytes, bytes]]   # (key, sha256 of the item) of every (sampled) item of one side


@dataclass(frozen=True)
class Difference:
    """The first item found that differs: ``kind`` is changed, missing (dump only) or extra (restored only).

    ``key`` is None when the differing bucket held more than the limit allows (``reason`` says so).
    """

    kind: str
    key: bytes | None
    dump_hash: str | None = None
    restored_hash: str | None = None
    buckets: int = 1
    reason: str = ""


def first_difference(dump_side: Callable[[], Keyed], restored_side: Callable[[], Keyed], *, expected: int,
                     max_keys: int, salt: bytes | None = None) -> Difference | None:
    """Read each side twice more: bucket sums, then the keys of the first differing bucket.

    ``expected`` (the larger count) sizes the buckets so that one holds about a quarter of
    ``max_keys``; a bucket that still holds more stops the collection at ``max_keys`` and says so
    instead of growing without bound. The buckets are salted anew for each call (``salt``, for
    tests), so keys in a backup cannot be ground to pile into one.
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    buckets = max(1, math.ceil(expected * BUCKETS_PER_LIMIT / max(1, max_keys)))
    dump_sums, restored_sums = _bucket_sums(dump_side(), buckets, salt), _bucket_sums(restored_side(), buckets, salt)
    differing = [b for b in range(buckets) if dump_sums[b] != restored_sums[b]]
    if not differing:
        return None
    chosen = differing[0]
    dump_keys, dump_full = _keys_in(dump_side(), chosen, buckets, max_keys, salt)
    restored_keys, restored_full = _keys_in(restored_side(), chosen, buckets, max_keys, salt)
    if not (dump_full and restored_full):
        return Difference("changed", None, buckets=buckets,
                          reason=f"bucket {chosen} of {buckets} holds more than limits.max_keyed_documents ({max_keys:,}) keys")
    for key, digest in dump_keys.items():
        other = restored_keys.get(key)
        if other is None:
            return Difference("missing", key, _hex(digest), None, buckets)
        if other != digest:
            return Difference("changed", key, _hex(digest), _hex(other), buckets)
    for key, digest in restored_keys.items():
        if key not in dump_keys:
            return Difference("extra", key, None, _hex(digest), buckets)
    return None


def _hex(total: int) -> str:
    return f"{total % MODULUS:064x}"


def _bucket_sums(items: Keyed, buckets: int, salt: bytes) -> list[tuple[int, int]]:
    counts, totals = [0] * buckets, [0] * buckets
    for key, digest in items:
        bucket = bucket_of(key, buckets, salt)
        counts[bucket] += 1
        totals[bucket] += int.from_bytes(digest, "big")
    return [(count, total % MODULUS) for count, total in zip(counts, totals)]


def _keys_in(items: Keyed, chosen: int, buckets: int, max_keys: int, salt: bytes) -> tuple[dict[bytes, int], bool]:
    """key -> sum of its items' hashes, for the items of bucket ``chosen``; False once past ``max_keys``."""
    keys: dict[bytes, int] = {}
    for key, digest in items:
        if bucket_of(key, buckets, salt) != chosen:
            continue
        if key not in keys and len(keys) >= max_keys:
            return keys, False
        keys[key] = keys.get(key, 0) + int.from_bytes(digest, "big")
    return keys, True


# --------------------------------------------------------------------------- a dump file, read once


def count_and_digest_bson(path: Path, limits: Limits, sampler: Sampler, *, reencode: bool = False) -> tuple[int, Digest]:
    """Whole, valid documents in a ``.bson`` file and their digest, in the one read that counts them."""
    digester = DocumentDigester(sampler, reencode)
    count = 0
    for batch in iter_bson_batches(path, limits=limits):
        digester.add_batch(batch.block, batch.spans, batch.documents)
        count += len(batch.documents)
    return count, digester.result()


def keyed_bson(path: Path, limits: Limits, sampler: Sampler, *, reencode: bool = False) -> Keyed:
    """(``_id`` key, sha256) of each (sampled) document of a dump file: the dump side of the keyed pass."""
    for raw, document in iter_documents(path, limits):
        key = id_key_of(document) if reencode else bson_id_key(raw)
        if sampler.keeps(key):
            yield key, hashlib.sha256(bson.encode(document, codec_options=ENCODING) if reencode else raw).digest()
