"""CS231n assignment 2 as exercises: the NumPy engine :mod:`cnnarch.scratch` and its PyTorch part.

:func:`~cnnarch.assignment.workspace.init_workspace` writes a student workspace: a ``cs231n`` package
whose exercise functions are stubs derived from the reference sources (signatures and docstrings kept,
bodies replaced by a marked ``raise NotImplementedError``), the rest copied from the reference, its own
CIFAR-10 loader (:mod:`cnnarch.assignment.data_utils`), and the assignment's notebooks importing it; it
imports nothing of cnnarch. :func:`~cnnarch.assignment.grader.grade` grades a workspace function by
function against checks computed at grading time (numerical gradients, torch, the reference engine on
seeded inputs), in an isolated process with a time limit.
:func:`~cnnarch.assignment.release.release_assignment` writes a course's release: the student folder
without the answer key, and the autograder. The command line is ``cnnarch assignment init DIR``, ``check
DIR``, ``summary DIR`` and ``release OUT``.
"""

from cnnarch.assignment.exercises import EXERCISES, PARTS

__all__ = ["EXERCISES", "PARTS"]
