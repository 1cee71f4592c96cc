"""``collect``: put submissions in ``submitted/<student>/<assignment>/<assignment>.ipynb``.

The source is a folder of notebooks, a zip file (e.g. an LMS "download all submissions"), or a
folder of both (zips inside zips too). Files must be named ``<student_id>_<assignment>.ipynb``
(anything after the assignment id, like `` (1)`` or ``-late``, is ignored; ``--regexp`` takes a
named regexp with a ``student_id`` group), e.g. ``alice_a1_activation_derivatives.ipynb``.

Rules (each skipped entry is named with its reason; one bad entry never stops the others):

* Junk is not a submission: ``__MACOSX/``, names starting with ``.``, files that are not
  ``.ipynb`` or ``.zip`` are ignored.
* Student ids are normalized: Unicode NFC (a Mac zip's "Zoë" is the Linux "Zoë"), lower case,
  runs of spaces as one ``_``. Allowed: letters and digits of any script, ``_``, ``-``, ``.``
  and ``@``, not starting with ``.``, at most 100 characters; any other id is refused.
* Nothing is written outside ``submitted/``: zip entries are read in memory, never extracted by
  their own path.
* Several files of one student: the newest (zip entry time or file modification time) is taken;
  on a tie, the highest `` (n)`` copy number. A warning names the file taken and the ones not.
* Every placed notebook gets ``timestamp.txt`` (nbgrader's submission time: that newest time,
  UTC). A notebook whose content changed since it was last graded is graded again by
  ``autograde`` (``course.gradestate``).
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from . import ROOT

ID_RE = re.compile(r"^[^\W][\w.@-]{0,99}$")     # \w: letters/digits of any script and "_"
MAX_ZIP_DEPTH = 3
MAX_BYTES = 50_000_000                          # a notebook larger than this is refused


def default_regexp(assignment: str) -> str:
    """``<student_id>_<assignment>[ (n)][-anything].ipynb``; student ids may contain underscores."""
    nb = re.escape(assignment)
    return rf"^(?:.*[/\\])?(?P<student_id>[^/\\]+?)_(?P<file_id>{nb})(?:[ _\-(][^/\\]*)?\.ipynb$"


def normalize_id(raw: str) -> str | None:
    """The student id ``raw`` normalized (NFC, lower case, spaces as ``_``), or None if it is
    not in the safe set (see the module docstring)."""
    sid = re.sub(r"\s+", "_", unicodedata.normalize("NFC", raw).strip()).lower()
    return sid if ID_RE.match(sid) and sid not in (".", "..") else None


@dataclass
class Entry:
    name: str           # where it came from, for messages (e.g. "class.zip:bob_a1.ipynb")
    basename: str
    mtime: float
    data: bytes


def _is_junk(parts) -> bool:
    """macOS resource forks and hidden files or folders (a ``..`` path step is not junk: only
    the entry's base name is used, so it cannot lead outside ``submitted/``)."""
    return any(p == "__MACOSX" or (p.startswith(".") and p not in (".", "..")) for p in parts)


def _zip_entries(blob: bytes, label: str, depth: int, warn):
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except zipfile.BadZipFile as exc:
        warn(f"skipped {label}: not a readable zip ({exc})")
        return
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        where = f"{label}:{name}"
        if _is_junk(parts):
            continue
        if info.file_size > MAX_BYTES:
            warn(f"skipped {where}: larger than {MAX_BYTES // 1_000_000} MB")
            continue
        try:
            data = zf.read(info)
            mtime = dt.datetime(*info.date_time, tzinfo=dt.timezone.utc).timestamp()
        except Exception as exc:        # a corrupt entry: name it, go on
            warn(f"skipped {where}: cannot be read from the zip ({exc})")
            continue
        yield from _classify(Entry(where, parts[-1], mtime, data), depth, warn)


def _classify(entry: Entry, depth: int, warn):
    low = entry.basename.lower()
    if low.endswith(".zip"):
        if depth >= MAX_ZIP_DEPTH:
            warn(f"skipped {entry.name}: zip nested deeper than {MAX_ZIP_DEPTH}")
        else:
            yield from _zip_entries(entry.data, entry.name, depth + 1, warn)
    elif low.endswith(".ipynb"):
        yield entry


def entries(source: Path, warn):
    """Every candidate notebook under ``source`` (a file or folder), junk left out."""
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file()
        and not _is_junk(p.relative_to(source).parts))
    for path in files:
        if not path.name.lower().endswith((".ipynb", ".zip")):
            continue
        try:
            if path.stat().st_size > MAX_BYTES and path.suffix.lower() == ".ipynb":
                warn(f"skipped {path}: larger than {MAX_BYTES // 1_000_000} MB")
                continue
            entry = Entry(str(path), path.name, path.stat().st_mtime, path.read_bytes())
        except OSError as exc:
            warn(f"skipped {path}: cannot be read ({exc.strerror or exc})")
            continue
        yield from _classify(entry, 0, warn)


def _copy_number(basename: str) -> int:
    m = re.search(r"\((\d+)\)[^()]*$", basename)
    return int(m.group(1)) if m else 0


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def collect(assignment: str, source: Path | str, *, root: Path | str = ROOT,
            regexp: str | None = None, warn=None):
    """Place every submission of ``assignment`` found in ``source`` (rules: module docstring).

    Returns the submitted notebooks of this assignment afterwards. ``warn(line)`` receives one
    line per skipped entry or resolved duplicate (default: printed to stderr). Re-collecting
    replaces a student's notebook; students absent from ``source`` keep theirs.
    """
    import sys

    root = Path(root).resolve()
    source = Path(source)
    if not source.exists():
        raise SystemExit(f"collect: {source} does not exist")
    warn = warn or (lambda line: print(line, file=sys.stderr))
    rx = re.compile(regexp or default_regexp(assignment))
    chosen: dict[str, list[Entry]] = {}
    for entry in entries(source, warn):
        base = unicodedata.normalize("NFC", entry.basename)
        m = rx.match(base)
        if not m:
            warn(f"skipped {entry.name}: name is not <student>_{assignment}.ipynb")
            continue
        sid = normalize_id(m.group("student_id"))
        if sid is None:
            warn(f"skipped {entry.name}: student id {m.group('student_id')!r} is not allowed "
                 "(letters, digits, _ - . @; not starting with '.')")
            continue
        chosen.setdefault(sid, []).append(entry)
    submitted = root / "submitted"
    for sid, group in sorted(chosen.items()):
        group.sort(key=lambda e: (e.mtime, _copy_number(e.basename)), reverse=True)
        best = group[0]
        if len(group) > 1:
            warn(f"duplicate for {sid}: took {best.name} (newest, then highest (n)); "
                 f"ignored {', '.join(e.name for e in group[1:])}")
        dest = submitted / sid / assignment
        try:
            if submitted.resolve() not in dest.resolve().parents:   # cannot happen: ID_RE
                raise ValueError(f"{dest} is outside {submitted}")
            dest.mkdir(parents=True, exist_ok=True)
            for old in dest.glob("*.ipynb"):
                if old.name != f"{assignment}.ipynb":
                    old.unlink()
            _write_atomic(dest / f"{assignment}.ipynb", best.data)
            stamp = dt.datetime.fromtimestamp(best.mtime, dt.timezone.utc)
            _write_atomic(dest / "timestamp.txt",
                          stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC").encode())
        except (OSError, ValueError) as exc:
            warn(f"NOT collected {best.name} for {sid}: {getattr(exc, 'strerror', None) or exc}")
    return sorted(submitted.glob(f"*/{assignment}/*.ipynb"))
