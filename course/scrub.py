"""Feedback without hidden tests: an nbgrader preprocessor for ``generate_feedback``.

nbgrader's feedback shows every test cell as graded, hidden tests included, and the cell's output
(a traceback) quotes them again. :class:`ScrubHiddenTests` replaces each hidden region with one
comment line and replaces the outputs of such cells with a short note. The cell's score is
unaffected (it is read from the gradebook by ``GetGrades``).
"""
from __future__ import annotations

import re

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

BEGIN = "BEGIN HIDDEN TESTS"
END = "END HIDDEN TESTS"
_REGION = re.compile(r"^[ \t]*#+ *" + BEGIN + r".*?^[ \t]*#+ *" + END + r"[^\n]*\n?",
                     re.MULTILINE | re.DOTALL)


def scrub_source(source: str, placeholder: str) -> tuple[str, bool]:
    """Remove every hidden-test region from ``source``; return (new source, whether any was found)."""
    if BEGIN not in source:
        return source, False
    new, n = _REGION.subn(lambda m: placeholder + "\n", source)
    if BEGIN in new or END in new:  # unbalanced markers: drop everything after the first one
        new = new[: new.index(BEGIN)].rsplit("\n", 1)[0] + "\n" + placeholder + "\n"
    return new, True


class ScrubHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests (source and outputs) from autograded notebooks before feedback."""

    placeholder = Unicode("# (hidden tests: not shown)").tag(config=True)
    output_note = Unicode(
        "This cell also ran hidden tests, so its output is not shown. "
        "Its score is above; run the visible tests in your notebook to debug.\n"
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.source, hidden = scrub_source(cell.source, self.placeholder)
            if hidden:
                cell.outputs = [new_output("stream", name="stdout", text=self.output_note)]
        return cell, resources
