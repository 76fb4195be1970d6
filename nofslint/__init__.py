"""nofslint: find memory-reclaim deadlocks in Linux kernel C before they are merged."""

__version__ = "0.1.0"
