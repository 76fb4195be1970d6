"""The command line: parses options, calls the library, prints. Nothing here decides
what a run finds.

May import: every other layer.
"""

from nofslint.cli.app import console, main

__all__ = ["console", "main"]
