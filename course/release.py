"""``release``: regenerate ``exercises/`` from ``solutions/`` with ``nbgrader generate_assignment``."""
from __future__ import annotations

import json
from pathlib import Path

from . import ROOT
from .nbg import load_config, make_api, run


def jupyterlab_metadata() -> dict:
    """The kernelspec and language_info JupyterLab writes when it saves a notebook run by this
    Python's ipykernel; a release that already has them is not marked modified on opening."""
    import platform

    return {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"codemirror_mode": {"name": "ipython", "version": 3},
                              "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
                              "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
                              "version": platform.python_version()}}


def normalize_notebook(path: Path) -> None:
    """Rewrite a notebook in one canonical form (sorted keys, indent 1, no outputs, newline at end,
    JupyterLab's kernelspec and language_info).

    generate_assignment's output is already deterministic; this pins the byte layout too, so the
    committed release can be compared byte for byte with a fresh one.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    nb.setdefault("metadata", {}).update(jupyterlab_metadata())
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def release(assignments, root: Path | str = ROOT, db: bool = True) -> list[Path]:
    """Generate the student version of each assignment into ``exercises/<id>/``.

    With ``db=True`` (the default) the gradebook records the assignment and its grade cells, which
    autograding needs. ``db=False`` touches no gradebook (used by the sync test). Returns the
    notebooks written.
    """
    root = Path(root).resolve()
    overrides = {} if db else {"GenerateAssignment.no_database": True, "SaveCells.enabled": False}
    api = make_api(root, load_config(root, **overrides))
    written = []
    for a in assignments:
        run(api.generate_assignment(a, force=True, create=True), f"generate_assignment {a}")
        for nb in sorted((root / "exercises" / a).glob("*.ipynb")):
            normalize_notebook(nb)
            written.append(nb)
    return written
