"""Exercise mode for CS231n assignment 2 on the NumPy engine :mod:`cnnarch.scratch`.

:func:`~cnnarch.assignment.workspace.init_workspace` writes a student workspace: a ``cs231n`` package
whose exercise functions are stubs derived from the reference sources (signatures and docstrings kept,
bodies replaced by a marked ``raise NotImplementedError``), the rest re-exported from
``cnnarch.scratch``, and the assignment's notebooks importing it. :func:`~cnnarch.assignment.grader.grade`
grades a workspace function by function against checks computed at grading time (numerical gradients,
torch, the reference engine on seeded random inputs), each in a worker process with a time limit.
The command line is ``cnnarch assignment init DIR`` and ``cnnarch assignment check DIR``.
"""

from cnnarch.assignment.exercises import EXERCISES, PARTS

__all__ = ["EXERCISES", "PARTS"]
