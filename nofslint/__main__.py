"""``python -m nofslint`` is the ``nofslint`` command."""

from nofslint.cli import console

console()
