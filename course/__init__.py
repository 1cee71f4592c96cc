"""The course's instructor tools: a thin layer over nbgrader 0.9.6 (``python -m course --help``).

Every command runs nbgrader's own converters (generate_assignment, zip_collect, autograde,
generate_feedback, export) through its Python API with the course's ``nbgrader_config.py``; the
course adds only what nbgrader lacks: a byte-stable release, a self-check that exits non-zero,
a progress display, feedback without hidden tests, and a per-question grade report.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Assignment ids, in course order. Each has one notebook ``<id>.ipynb``.
ASSIGNMENTS = (
    "a1_activation_derivatives",
    "a2_softmax_cross_entropy",
    "a3_backprop",
    "a4_gradient_flow",
    "a5_normalization_residual",
)
