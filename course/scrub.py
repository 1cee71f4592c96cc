"""Feedback without hidden tests: an nbgrader preprocessor for ``generate_feedback``.

nbgrader's feedback shows every test cell as graded, hidden tests included, and the cell's output
(a traceback) quotes them again. :class:`ScrubHiddenTests` replaces each hidden region with one
comment line and the outputs of such cells with a short note; then it removes, by **content**,
every line of a hidden region wherever else it appears in the notebook (any cell's source or
output, e.g. printed by the student's code), so no marker word is needed to find a leak. The
cell's score is unaffected (it is read from the gradebook by ``GetGrades``).

A test cell that also holds hidden tests keeps its output when a **visible** line failed (the
last frame of the grader's traceback, ``File "<test ...>", line N``, lies outside the hidden
region): the student sees which visible test failed and its message (redacted by content like
everything else). A failure on a hidden line shows only that a hidden test failed.
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
MIN_LINE = 8                # shorter hidden lines (``)``, ``else:``) say nothing
REDACTED = "[hidden test line removed]"


def scrub_source(source: str, placeholder: str) -> tuple[str, bool]:
    """Remove every hidden-test region from ``source``; return (new source, whether any was found)."""
    if BEGIN not in source:
        return source, False
    new, n = _REGION.subn(lambda m: placeholder + "\n", source)
    if BEGIN in new or END in new:  # unbalanced markers: drop everything after the first one
        new = new[: new.index(BEGIN)].rsplit("\n", 1)[0] + "\n" + placeholder + "\n"
    return new, True


def hidden_lines(sources) -> set[str]:
    """The stripped lines of every hidden region in ``sources`` (the test cells) that are not
    also in a visible part of them, and long enough to mean something."""
    hidden, public = set(), set()
    for src in sources:
        regions = _REGION.findall(src)
        visible = _REGION.sub("", src)
        if BEGIN in visible:                        # unterminated: the rest is hidden
            regions.append(visible[visible.index(BEGIN):])
            visible = visible[:visible.index(BEGIN)]
        for region in regions:
            hidden |= {line.strip() for line in region.splitlines()}
        public |= {line.strip() for line in visible.splitlines()}
    return {h for h in hidden - public if len(h) >= MIN_LINE and re.search(r"\w", h)
            and BEGIN not in h and END not in h}


def redact(text: str, lines) -> tuple[str, bool]:
    """``text`` with every occurrence of any of ``lines`` replaced; whether any was found."""
    found = False
    for line in sorted(lines, key=len, reverse=True):
        if line in text:
            text, found = text.replace(line, REDACTED), True
    return text, found


class ScrubHiddenTests(NbGraderPreprocessor):
    """Remove hidden tests (source and outputs) from autograded notebooks before feedback."""

    placeholder = Unicode("# (hidden tests: not shown)").tag(config=True)
    output_note = Unicode(
        "This cell also ran hidden tests, so its output is not shown. "
        "Its score is above; run the visible tests in your notebook to debug.\n"
    ).tag(config=True)
    hidden_failed_note = Unicode(
        "Every visible test of this cell passed; a hidden test failed (hidden tests are not "
        "shown). Check your answer against the rules stated in the question.\n"
    ).tag(config=True)
    passed_note = Unicode("All tests of this cell passed (hidden tests included).\n").tag(config=True)

    def preprocess(self, nb, resources):
        secret = hidden_lines(c.source for c in nb.cells if BEGIN in c.source)
        for cell in nb.cells:
            if cell.cell_type == "code":
                hidden_nos = hidden_line_numbers(cell.source)
                cell.source, hidden = scrub_source(cell.source, self.placeholder)
                if hidden:
                    cell.outputs = self._outputs(cell.get("outputs", []), hidden_nos)
            cell.source = redact(cell.source, secret)[0]
            for out in cell.get("outputs", []):   # marker words printed by anyone say nothing
                _redact_output(out, secret | {BEGIN, END})
            for att in cell.get("attachments", {}).values():
                for key in list(att):
                    if isinstance(att[key], str) and key.startswith("text"):
                        att[key] = redact(att[key], secret)[0]
        return nb, resources


    def _outputs(self, outputs, hidden_nos):
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if not errors:
            return [new_output("stream", name="stdout", text=self.passed_note)]
        line = failing_line(errors[-1])
        if line is None or line in hidden_nos:
            return [new_output("stream", name="stdout", text=self.hidden_failed_note
                               if line is not None else self.output_note)]
        note = new_output("stream", name="stdout", text="A visible test of this cell failed "
                          "(hidden tests of this cell are not shown):\n")
        return [note, errors[-1]]      # redacted by content below, like every output


def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines of ``source`` inside hidden regions (markers included; an
    unterminated region runs to the end)."""
    out, inside = set(), False
    for i, line in enumerate(source.splitlines(), 1):
        if BEGIN in line:
            inside = True
        if inside:
            out.add(i)
        if END in line:
            inside = False
    return out


def failing_line(error) -> int | None:
    """The line of the test cell where the grader's traceback ends (``File "<test ...>", line N``)."""
    hits = re.findall(r'File "<test [^"]*>", line (\d+)', "\n".join(error.get("traceback", [])))
    return int(hits[-1]) if hits else None


def _redact_output(out, secret) -> None:
    if "text" in out:
        out.text = redact(out.text, secret)[0]
    if "evalue" in out:
        out.evalue = redact(out.evalue, secret)[0]
    if "traceback" in out:
        out.traceback = [redact(line, secret)[0] for line in out.traceback]
    for key, value in out.get("data", {}).items():
        if isinstance(value, str) and not key.startswith("image/"):
            out.data[key] = redact(value, secret)[0]
        elif isinstance(value, list):
            out.data[key] = [redact(v, secret)[0] if isinstance(v, str) else v for v in value]
