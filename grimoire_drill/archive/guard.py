"""Judging an archive before anything of it is kept: each header, each member, the whole stream.

Why apart from the pass itself: these are the rules a hostile archive meets, in one place.
tarfile trusts what headers declare: it reads a GNU long-name or PAX header whole into memory
(a header declaring 1 TB is a memory bomb), parses PAX records with a regex that backtracks
for seconds on a crafted 64 KiB header, and recurses once per chained extended header. So
:class:`BoundedTarInfo` judges the declared size before reading and parses PAX records in one
linear pass, and :class:`MemberGuard` judges each member (name, kind, size, place, duplicates)
before it is written. Every ceiling is a :class:`~grimoire_drill.limits.Limits` field, and a
message names it; names from the archive are quoted and clipped, never shown raw.
"""

from __future__ import annotations

import math
import os
import posixpath
import tarfile
from contextlib import contextmanager
from pathlib import Path

from grimoire_drill.errors import DrillFailure
from grimoire_drill.limits import Limits
from grimoire_drill.text import quote

FIX_UNSAFE = "do not restore this archive by hand; rebuild it with scripts/backup-production.sh"
FIX_SPARSE = "rebuild the archive without --sparse (scripts/backup-production.sh does not use it)"
NAME_MAX = 255      # bytes in one path component on Linux filesystems (ext4, xfs, tmpfs)
PATH_MAX = 4096     # bytes in a path the kernel accepts, with its NUL
MTIME_RANGE = 2**40  # seconds either side of 1970: beyond it os.utime overflows


def fix_limit(field: str) -> str:
    """The fix for a limit that was hit: raise it where the operator sets it."""
    return f"if the backup really needs more, raise {field} in [limits] of drills/expectations.toml"


def quoted(text: str, limits: Limits) -> str:
    """A name from the archive as messages show it: in quotes, printable, clipped."""
    return f"'{quote(text, limits.max_quoted_chars)}'"


# --------------------------------------------------------------------------- headers


class HeaderBounds:
    """What :class:`BoundedTarInfo` needs from the pass: the limits, where to blame, the chain depth."""

    def __init__(self, limits: Limits, archive: Path | str):
        self.limits = limits
        self.archive = archive
        self.depth = 0  # extended headers read so far before the member they describe

    def refuse(self, offset: int, reason: str, fix: str) -> DrillFailure:
        return DrillFailure(f"unsafe tar header at byte {offset:,} of the tar stream: {reason}",
                            where=str(self.archive), fix=fix)


class BoundedTarInfo(tarfile.TarInfo):
    """tarfile's TarInfo, judging extended headers before their payload is read.

    The ``archive`` argument of these methods is the reading :class:`Unpacker` (tarfile calls
    it ``tarfile``), which carries the :class:`HeaderBounds`.
    """

    def _proc_gnulong(self, archive):
        kind = "GNU long-name" if self.type == tarfile.GNUTYPE_LONGNAME else "GNU long-link"
        with _extended_header(self, archive, kind):
            return super()._proc_gnulong(archive)

    def _proc_sparse(self, archive):
        raise archive.bounds.refuse(self.offset, f"sparse file {quoted(self.name, archive.bounds.limits)}",
                                    FIX_SPARSE)

    def _proc_pax(self, archive):
        with _extended_header(self, archive, "PAX"):
            return self._read_pax(archive)

    def _read_pax(self, archive):
        """tarfile's ``_proc_pax``, with records parsed in one pass and counted (see the module docstring)."""
        bounds: HeaderBounds = archive.bounds
        buf = archive.fileobj.read(self._block(self.size))
        if len(buf) < self.size:
            raise tarfile.TruncatedHeaderError("truncated PAX header")
        records = _pax_records(buf[: self.size], self.offset, bounds)
        pax_headers = archive.pax_headers if self.type == tarfile.XGLTYPE else archive.pax_headers.copy()
        for keyword, value in records:
            if keyword == b"hdrcharset":
                pax_headers["hdrcharset"] = value.decode("utf-8", "replace")
        encoding = archive.encoding if pax_headers.get("hdrcharset") == "BINARY" else "utf-8"
        for keyword, value in records:
            key = self._decode_pax_field(keyword, "utf-8", "utf-8", archive.errors)
            if key.startswith("GNU.sparse."):
                raise bounds.refuse(self.offset, "a sparse file (GNU.sparse PAX records)", FIX_SPARSE)
            if key in tarfile.PAX_NAME_FIELDS:
                pax_headers[key] = self._decode_pax_field(value, encoding, archive.encoding, archive.errors)
            else:
                pax_headers[key] = self._decode_pax_field(value, "utf-8", "utf-8", archive.errors)
        if len(pax_headers) > bounds.limits.max_pax_records:
            raise bounds.refuse(self.offset, f"{len(pax_headers):,} PAX records in force, over "
                                f"{bounds.limits.name('max_pax_records')}", fix_limit("max_pax_records"))
        try:
            following = self.fromtarfile(archive)
        except tarfile.HeaderError as exc:
            raise tarfile.SubsequentHeaderError(str(exc)) from None
        if self.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
            following._apply_pax_info(pax_headers, archive.encoding, archive.errors)
            following.offset = self.offset
            if "size" in pax_headers:
                offset = following.offset_data
                if following.isreg() or following.type not in tarfile.SUPPORTED_TYPES:
                    offset += following._block(max(following.size, 0))
                archive.offset = offset
        return following


@contextmanager
def _extended_header(info: tarfile.TarInfo, archive, kind: str):
    """Refuse an extended header whose declared size or chain is over the limits, before it is read."""
    bounds: HeaderBounds = archive.bounds
    limits = bounds.limits
    if info.size < 0:
        raise bounds.refuse(info.offset, f"a {kind} header declaring a negative size", FIX_UNSAFE)
    if info.size > limits.max_header_bytes:
        raise bounds.refuse(info.offset, f"a {kind} header of {info.size:,} bytes, over "
                            f"{limits.name('max_header_bytes')}", fix_limit("max_header_bytes"))
    bounds.depth += 1
    try:
        if bounds.depth > limits.max_extended_headers:
            raise bounds.refuse(info.offset, f"more than {limits.name('max_extended_headers')} extended "
                                "headers before one member", fix_limit("max_extended_headers"))
        yield
    finally:
        bounds.depth -= 1


def _pax_records(data: bytes, offset: int, bounds: HeaderBounds) -> list[tuple[bytes, bytes]]:
    """``"<length> <keyword>=<value>\\n"`` records, parsed forwards only; zero padding ends them."""
    records: list[tuple[bytes, bytes]] = []
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos, pos + 21)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit():
            raise tarfile.InvalidHeaderError("invalid PAX record length")
        end = pos + int(digits)
        equals = data.find(b"=", space + 1, end)
        if end > len(data) or end <= space + 1 or data[end - 1] != 0x0A or equals <= space + 1:
            raise tarfile.InvalidHeaderError("invalid PAX record")
        records.append((data[space + 1: equals], data[equals + 1: end - 1]))
        if len(records) > bounds.limits.max_pax_records:
            raise bounds.refuse(offset, f"more than {bounds.limits.max_pax_records:,} records in one PAX "
                                f"header, over {bounds.limits.name('max_pax_records')}", fix_limit("max_pax_records"))
        pos = end
    return records


class Unpacker(tarfile.TarFile):
    """tarfile reading the pass's forward-only stream, with bounded headers, minus what a drill does not need.

    Ownership is not restored (data_filter has cleared it anyway). Members are not kept: the
    guard remembers what it needs, so 2 million members do not mean 2 million TarInfos in
    memory. Links never fall back to copying their target (that makes tarfile read the whole
    archive again to find it): a link that cannot be made is an error.
    """

    tarinfo = BoundedTarInfo

    def __init__(self, fileobj, bounds: HeaderBounds):
        self.bounds = bounds
        super().__init__(fileobj=fileobj, mode="r", tarinfo=BoundedTarInfo)

    def next(self):
        member = super().next()
        self.members.clear()
        return member

    def chown(self, tarinfo, targetpath, numeric_owner):
        pass

    def makelink(self, tarinfo, targetpath):
        if tarinfo.issym():
            os.symlink(tarinfo.linkname, targetpath)
        else:
            os.link(tarinfo._link_target, targetpath)


# --------------------------------------------------------------------------- members


class MemberGuard:
    """Our own rules for members, on top of tarfile's data_filter.

    One top folder named like the archive; no absolute names, ``..``, devices or fifos; nothing
    written through a link or a file; no name twice, once normalised (``a/./b`` is ``a/b``,
    ``a/b/`` is ``a/b``); names the filesystem can hold; declared sizes within the limits.
    """

    def __init__(self, archive: Path | str, top: str, archive_bytes: int, limits: Limits, dest: Path):
        self._archive = archive
        self._limits = limits
        self._top = top
        self._archive_bytes = max(archive_bytes, 1)
        self._dest_bytes = len(os.fsencode(os.path.realpath(dest))) + 1
        # One node per path component: name -> [kind, children]; kind is "parent" (made for a
        # member below it), "dir", "file" or "link". A tree, so memory grows with the names, not
        # with the square of their depth (as a set of every prefix would).
        self._tree: dict[str, list] = {}
        self._symlinks: list[str] = []
        self.members = 0
        self.total = 0

    def unsafe(self, member: tarfile.TarInfo, reason: str, fix: str = FIX_UNSAFE) -> DrillFailure:
        return DrillFailure(f"unsafe member {quoted(member.name, self._limits)}: {reason}",
                            where=str(self._archive), fix=fix)

    def admit(self, member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        """The member to extract (normalised), None to skip, or raise naming it."""
        limits = self._limits
        self.members += 1
        if self.members > limits.max_members:
            raise self.unsafe(member, f"more than {limits.name('max_members')} members",
                              fix_limit("max_members"))
        name = member.name
        if "\0" in name or "\0" in member.linkname:
            raise self.unsafe(member, "NUL byte in its name or link target")
        self._check_name_lengths(member)
        if name.startswith("/"):
            raise self.unsafe(member, "absolute path")
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise self.unsafe(member, "'..' in path")
        if not parts:
            return None
        if parts[0] != self._top:
            raise self.unsafe(member, self._outside_reason(parts[0]))
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise self.unsafe(member, "device, fifo or other special file")
        if len(parts) > limits.max_path_depth:
            raise self.unsafe(member, f"{len(parts):,} folders deep, over {limits.name('max_path_depth')}",
                              fix_limit("max_path_depth"))
        path = "/".join(parts)
        self._check_numbers(member)
        self._check_size(member)
        siblings = self._parents_of(member, parts)
        earlier = siblings.get(parts[-1])
        if earlier is not None and not (earlier[0] == "parent" and member.isdir()):
            raise self.unsafe(member, "appears twice in the archive (names compared once normalised: "
                              "'a/./b' and 'a/b/' are 'a/b')")
        changes: dict[str, str] = {"name": path}
        if member.issym():
            changes["linkname"] = self._symlink_target(member, parts)
        elif member.islnk():
            changes["linkname"] = self._hardlink_target(member)
        kind = "dir" if member.isdir() else "link" if member.issym() else "file"
        if earlier is not None:
            earlier[0] = kind
        else:
            siblings[parts[-1]] = [kind, {} if kind == "dir" else None]
        if kind == "link":
            self._symlinks.append(path)
        if all(getattr(member, key) == value for key, value in changes.items()):
            return member  # already normal, as tar writes it: no copy per member
        return member.replace(**changes, deep=False)

    def _parents_of(self, member: tarfile.TarInfo, parts: list[str]) -> dict[str, list]:
        """The children of the member's folder, making its folders known; raise if one is a link or a file."""
        children = self._tree
        for depth, part in enumerate(parts[:-1], 1):
            entry = children.get(part)
            if entry is None:
                entry = children[part] = ["parent", {}]
            elif entry[0] in ("link", "file"):
                what = "symlink" if entry[0] == "link" else "file"
                raise self.unsafe(member, f"path goes through the {what} {quoted('/'.join(parts[:depth]), self._limits)}")
            children = entry[1]
        return children

    def _kind_of(self, parts: list[str]) -> str | None:
        children: dict[str, list] | None = self._tree
        entry = None
        for part in parts:
            entry = children.get(part) if children is not None else None
            if entry is None:
                return None
            children = entry[1]
        return entry[0] if entry is not None else None

    def _outside_reason(self, top: str) -> str:
        if self.members == 1 or not self._tree:
            return (f"the archive's top folder is {quoted(top, self._limits)}, not {self._top}/ "
                    "as its file name says (renamed or mixed archives)")
        return f"outside the single top folder {self._top}/ (a second top folder or a stray member)"

    def _check_name_lengths(self, member: tarfile.TarInfo) -> None:
        """Names the filesystem cannot hold fail here, naming the member, before anything is created."""
        limits = self._limits
        name_bytes = 0
        for label, text in (("name", member.name), ("link target", member.linkname)):
            size = len(text) if text.isascii() else len(os.fsencode(text))
            name_bytes = name_bytes or size
            if size <= NAME_MAX:
                continue  # no component can be too long either: the common case, checked cheaply
            encoded = os.fsencode(text)
            if len(encoded) > limits.max_name_bytes:
                raise self.unsafe(member, f"a {label} of {len(encoded):,} bytes, over "
                                  f"{limits.name('max_name_bytes')}", fix_limit("max_name_bytes"))
            longest = max(len(part) for part in encoded.split(b"/"))
            if longest > NAME_MAX:
                raise self.unsafe(member, f"File name too long: a {label} component of {longest:,} bytes, "
                                  f"over the {NAME_MAX} bytes a filesystem allows")
        if self._dest_bytes + name_bytes >= PATH_MAX:
            raise self.unsafe(member, f"File name too long: the extracted path would pass the "
                              f"{PATH_MAX} bytes the kernel accepts")

    def _check_numbers(self, member: tarfile.TarInfo) -> None:
        """Sizes and times the writers would choke on (tarfile takes any number a header spells)."""
        if member.size < 0:
            raise self.unsafe(member, "a negative size")
        mtime = member.mtime
        if mtime is not None and not (isinstance(mtime, (int, float)) and math.isfinite(mtime)
                                      and -MTIME_RANGE < mtime < MTIME_RANGE):
            raise self.unsafe(member, f"an impossible modification time ({quote(str(mtime), 40)})")

    def _check_size(self, member: tarfile.TarInfo) -> None:
        limits = self._limits
        if not member.isreg():
            return
        if member.size > limits.max_member_bytes:
            raise self.unsafe(member, f"{member.size:,} bytes, over {limits.name('max_member_bytes')} "
                              "for one file", fix_limit("max_member_bytes"))
        self.total += member.size
        if self.total > limits.max_total_bytes:
            raise self.unsafe(member, f"the archive expands past {limits.name('max_total_bytes')}",
                              fix_limit("max_total_bytes"))
        ratio = self.total / self._archive_bytes
        if self.total > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise self.unsafe(member, f"decompression bomb: {self.total:,} bytes from a "
                              f"{self._archive_bytes:,}-byte archive (ratio {ratio:.0f}, over "
                              f"{limits.name('max_ratio')})", fix_limit("max_ratio"))

    def _symlink_target(self, member: tarfile.TarInfo, parts: list[str]) -> str:
        target = member.linkname
        if not target:
            raise self.unsafe(member, "symlink with an empty target")
        if target.startswith("/"):
            raise self.unsafe(member, f"symlink to an absolute path ({quoted(target, self._limits)})")
        resolved = posixpath.normpath(posixpath.join(*parts[:-1], target))
        if resolved != self._top and not resolved.startswith(self._top + "/"):
            raise self.unsafe(member, f"symlink points outside {self._top}/ ({quoted(target, self._limits)})")
        return target

    def _hardlink_target(self, member: tarfile.TarInfo) -> str:
        target = member.linkname
        parts = [part for part in target.split("/") if part not in ("", ".")]
        normal = "/".join(parts)
        if target.startswith("/") or ".." in parts or self._kind_of(parts) != "file":
            raise self.unsafe(member, f"hard link to {quoted(target, self._limits)}, which is not an "
                              "earlier file of this backup")
        return normal

    def check_links(self, dest: Path) -> None:
        """After writing: every symlink must still resolve inside the top folder.

        Checked on disk because links can chain (a link through another link); nothing is
        ever written through a link (see ``admit``), so a bad one here has written nothing.
        A loop (``a -> b``, ``b -> a``) resolves to a path inside the folder and stays: every
        walk of the tree treats links as entries, never as folders to enter.
        """
        top = os.path.realpath(dest / self._top)
        for link in self._symlinks:
            resolved = os.path.realpath(dest / link)
            if os.path.commonpath([resolved, top]) != top:
                os.unlink(dest / link)
                raise DrillFailure(f"unsafe member {quoted(link, self._limits)}: symlink resolves outside "
                                   f"{self._top}/", where=str(self._archive), fix=FIX_UNSAFE)


class InflateBudget:
    """The inflated stream as a whole, headers and bytes after the tar end included, against the limits.

    Why besides the members' declared sizes: a bomb can hide where no member declares it, in
    header blocks or after the end-of-archive marker, which tar never extracts but we still inflate.
    """

    def __init__(self, archive: Path | str, archive_bytes: int, limits: Limits):
        self._archive = archive
        self._archive_bytes = max(archive_bytes, 1)
        self._limits = limits
        self.tar_end: int | None = None  # stream offset just past the end-of-archive marker, once known

    def check(self, inflated: int) -> None:
        """Raise once ``inflated`` bytes of stream are over the ratio or the trailing-bytes limit."""
        limits = self._limits
        ratio = inflated / self._archive_bytes
        if inflated > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise DrillFailure(f"decompression bomb: the archive inflates past {inflated:,} bytes from "
                               f"{self._archive_bytes:,} (ratio {ratio:.0f}, over {limits.name('max_ratio')})",
                               where=str(self._archive), fix=fix_limit("max_ratio"))
        if self.tar_end is not None and inflated - self.tar_end > limits.max_trailing_bytes:
            raise DrillFailure(f"more than {limits.name('max_trailing_bytes')} of data after the tar "
                               f"end-of-archive marker (at byte {self.tar_end:,} of the tar stream)",
                               where=str(self._archive), fix=FIX_UNSAFE)
