"""nofslint: find memory-reclaim deadlocks in Linux kernel C before they are merged."""

from nofslint import _compat

__version__ = "0.1.0"

_compat.install()
