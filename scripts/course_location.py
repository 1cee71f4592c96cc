"""Render where the course lives (course.yml) into every file that mentions it.

course.yml holds the repository URL, its branch and the optional BinderHub / JupyterHub URLs. The
parts of other files that depend on them sit between marker comments and are generated here:

* ``_config.yml``: the ``repository``, ``html`` (buttons) and ``launch_buttons`` keys, between
  ``# BEGIN course-location`` and ``# END course-location``. A button whose URL is unset is off.
  Colab is always off: ``actgrad`` is not on PyPI, so a notebook opened there cannot import it.
* Markdown (README.md, book/exercises.md) and the assignment notebooks' markdown cells: how to
  get the course, between ``<!-- BEGIN course-location: get-course -->`` and
  ``<!-- END course-location -->``. With a repository URL it is a ``git clone`` command; without
  one, a sentence telling the reader to ask the instructor for a copy.

A file that still has the old placeholder line ``git clone <course repository> && cd <course
repository>`` inside a code fence is migrated: the line becomes a generated block before the fence.

Usage:
    python scripts/course_location.py            # rewrite the blocks of every file below
    python scripts/course_location.py --check    # exit 1 and list the files that are out of sync
    python scripts/course_location.py FILE ...   # only these files
After changing solutions/, regenerate the student notebooks: ``python -m course release``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "course.yml"
KEYS = ("repository_url", "branch", "binderhub_url", "jupyterhub_url")

YAML_BEGIN = "# BEGIN course-location: generated from course.yml by scripts/course_location.py; edit course.yml"
YAML_END = "# END course-location"
MD_BEGIN = "<!-- BEGIN course-location: get-course (generated from course.yml by scripts/course_location.py) -->"
MD_END = "<!-- END course-location -->"
LEGACY = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^\n]*)\n"
                    r"(?P=indent)git clone <course repository> && cd <course repository>[^\n]*\n",
                    re.M)
BLOCK = re.compile(r"^(?P<indent>[ \t]*)(?P<begin># BEGIN course-location|<!-- BEGIN course-location)"
                   r"[^\n]*\n(?P<body>.*?)^(?P=indent)(?P<end>" + re.escape(YAML_END) + "|"
                   + re.escape(MD_END) + r")[ \t]*$", re.M | re.S)
#: Text that must not survive anywhere: the placeholders this script replaced.
PLACEHOLDERS = ("<course repository>", "actgrad-course/activation-functions", "jupyterhub.example.org",
                "colab.research.google.com")


def load(path: Path = CONFIG) -> dict:
    """course.yml as a dict with every key (empty string when unset), validated."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - set(KEYS)
    if unknown:
        raise ValueError(f"course_location.load: unknown keys {sorted(unknown)} in {path}; known: {KEYS}")
    loc = {k: str(raw.get(k) or "").strip().rstrip("/") for k in KEYS}
    loc["branch"] = loc["branch"] or "main"
    for key in ("repository_url", "binderhub_url", "jupyterhub_url"):
        if loc[key] and not re.fullmatch(r"https://[^\s/]+(/[^\s]*)?", loc[key]):
            raise ValueError(f"course_location.load: {key} must be an https:// URL, got {loc[key]!r}")
        if any(p in loc[key] for p in PLACEHOLDERS):
            raise ValueError(f"course_location.load: {key} is a placeholder: {loc[key]!r}")
    for key in ("binderhub_url", "jupyterhub_url"):
        if loc[key] and not loc["repository_url"]:
            raise ValueError(f"course_location.load: {key} is set but repository_url is not; a launch "
                             "button opens the repository, so set repository_url too")
    return loc


def render_config(loc: dict) -> str:
    """The generated keys of _config.yml (without the marker lines)."""
    repo = bool(loc["repository_url"])
    data = {
        "repository": {"url": loc["repository_url"], "branch": loc["branch"]},
        "html": {"use_repository_button": repo, "use_issues_button": repo,
                 "use_edit_page_button": False},
        "launch_buttons": {"notebook_interface": "jupyterlab", "binderhub_url": loc["binderhub_url"],
                           "jupyterhub_url": loc["jupyterhub_url"], "colab_url": "", "thebe": False},
    }
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def clone_dir(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


def render_get_course(loc: dict) -> str:
    """How to get the course, as Markdown (without the marker lines)."""
    url = loc["repository_url"]
    if not url:
        return ("The course repository has no public address yet: ask your instructor for a copy (a clone,\n"
                "or a zip that you unpack) and open a terminal in its top folder.\n")
    branch = "" if loc["branch"] == "main" else f" --branch {loc['branch']}"
    return f"```bash\ngit clone{branch} {url}.git && cd {clone_dir(url)}\n```\n"


def _block(indent: str, begin: str, body: str, end: str) -> str:
    lines = [begin] + body.rstrip("\n").split("\n") + [end]
    return "\n".join((indent + line) if line else "" for line in lines)


def render_text(text: str, loc: dict) -> str:
    """``text`` with the legacy placeholder migrated and every generated block re-rendered."""
    def migrate(m):
        block = _block(m["indent"], MD_BEGIN, "", MD_END)
        return f"{block}\n\n{m['indent']}{m['fence']}{m['info']}\n"

    text = LEGACY.sub(migrate, text)

    def rerender(m):
        if m["begin"].startswith("#"):
            return _block(m["indent"], YAML_BEGIN, render_config(loc), YAML_END)
        return _block(m["indent"], MD_BEGIN, render_get_course(loc), MD_END)

    return BLOCK.sub(rerender, text)


def render_file(path: Path, loc: dict) -> str | None:
    """The new content of ``path``, or None when it has nothing to render."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        new = render_text(text, loc)
        return None if new == text and not BLOCK.search(text) else new
    nb = json.loads(text)
    touched = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        src = cell["source"]
        joined = "".join(src) if isinstance(src, list) else src
        new = render_text(joined, loc)
        if new != joined or BLOCK.search(joined):
            touched = True
            cell["source"] = new.splitlines(keepends=True) if isinstance(src, list) else new
    if not touched:
        return None
    return dump_like(text, nb)


def dump_like(original: str, nb: dict) -> str:
    """``nb`` as JSON in the layout of ``original`` (so a diff shows only what changed)."""
    before = json.loads(original)
    for kw in (dict(indent=1, sort_keys=True), dict(indent=1), dict(indent=2, sort_keys=True), dict(indent=2)):
        if json.dumps(before, ensure_ascii=False, **kw) + "\n" == original:
            return json.dumps(nb, ensure_ascii=False, **kw) + "\n"
    return json.dumps(nb, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def targets(root: Path = ROOT) -> list[Path]:
    """Every file the course location is rendered into."""
    files = [root / "_config.yml", root / "README.md", root / "book" / "exercises.md"]
    for folder in ("solutions", "exercises"):
        files += sorted((root / folder).glob("*/*.ipynb"))
    return [f for f in files if f.exists()]


def problems(path: Path, loc: dict) -> list[str]:
    """What is wrong with ``path``: a block out of sync with course.yml, or a placeholder left."""
    found = []
    new = render_file(path, loc)
    if new is not None and new != path.read_text(encoding="utf-8"):
        found.append(f"{path}: out of sync with course.yml")
    text = path.read_text(encoding="utf-8")
    found += [f"{path}: contains the placeholder {p!r}" for p in PLACEHOLDERS if p in text]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="files to render (default: all targets)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of sync")
    args = parser.parse_args(argv)
    loc = load()
    files = [f.resolve() for f in args.files] or targets()
    if args.check:
        found = [p for f in files for p in problems(f, loc)]
        print("\n".join(found) or f"{len(files)} files in sync with {CONFIG.name}")
        return 1 if found else 0
    for f in files:
        new = render_file(f, loc)
        if new is not None and new != f.read_text(encoding="utf-8"):
            f.write_text(new, encoding="utf-8")
            print(f"rendered {f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
