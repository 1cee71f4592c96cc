"""nbgrader configuration for the course (read by `nbgrader ...` and by `python -m course ...`).

Run every nbgrader command from the repository root, which is the course directory.
"""
import os
import sys

# Make the `course` package (feedback scrubber, CLI) importable when the `nbgrader` script runs.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "actgrad"
# solutions/<id>/<id>.ipynb are the instructor's sources; exercises/<id>/ is the student release
# (committed and published on the website). Student work and grades live in ignored folders.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "gradebook.db")
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# Stub that replaces every ### BEGIN SOLUTION ... ### END SOLUTION region in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Grading: every test is fast (well under a second); a cell that runs longer than this is
# interrupted (infinite loop) and grading moves on to the next cell.
c.Execute.timeout = 20
c.Execute.startup_timeout = 60
# An edited or deleted test cell is put back from the gradebook, never trusted.
c.Autograde.create_student = True

# Feedback for students must show neither the source nor the output of hidden tests.
# Import strings, not classes: formgrader sends this configuration to the browser as JSON.
c.GenerateFeedback.preprocessors = ["course.scrub.ScrubHiddenTests",
                                    "nbgrader.preprocessors.GetGrades",
                                    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor"]

# `python -m course collect A SOURCE` (nbgrader zip_collect): submissions are files named
# <student_id>_<notebook>.ipynb, e.g. alice_a1_activation_derivatives.ipynb, loose in a folder or
# inside LMS zip files. Override the pattern with `--regexp`.
c.ZipCollectApp.collector_plugin = "nbgrader.plugins.zipcollect.FileNameCollectorPlugin"

# Formgrader's grading page, offline: nbgrader's page loads MathJax 2 from a CDN. The course's
# course/formgrader_static/templates/formgrade/index.html.j2 shadows it (same template name, found
# first) and loads the vendored MathJax 2.7.9 (course/formgrader_static/mathjax2). Read by the
# formgrader extension of `jupyter lab` / `jupyter server` started in the repository root. Only the
# search paths change, so nbgrader's feedback template (same folder as formgrade) is untouched.
import importlib.util  # noqa: E402

_NBGRADER_TEMPLATES = os.path.join(os.path.dirname(importlib.util.find_spec("nbgrader").origin),
                                   "server_extensions", "formgrader", "templates")
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "course", "formgrader_static", "templates"),
    _NBGRADER_TEMPLATES]
c.HTMLExporter.extra_template_paths = [_NBGRADER_TEMPLATES]  # for {% extends 'formgrade/...' %}
