"""Where code lives in a kernel tree, and what that says about the calls it makes:
userspace directories, the architecture linked, generic code that dispatches to
every subsystem's operations, and storage backends that serve IO for what is
stacked above them.
"""

from __future__ import annotations

import posixpath

# Userspace code that lives in the kernel tree: never part of the kernel's call graph.
USERSPACE_DIRS = ("tools/", "scripts/", "samples/", "usr/", "Documentation/")
USERSPACE_AREAS = frozenset(d.rstrip("/") for d in USERSPACE_DIRS)
DEFAULT_ARCH = "x86"

# Directories whose indirect calls dispatch to other subsystems' tables: the VFS
# core, mm and the block layer call every filesystem's and driver's operations.
GENERIC_DIRS = frozenset({"fs", "mm", "block", "include/linux"})
ANY = "*"  # a chain's origin that may reach any implementation
# The operations a worker performs on someone else's file: writing it, reading it,
# syncing it, writing its pages back. Only these dispatch across directories; a
# generic ->release or ->kill_sb reached from anywhere links everything to everything.
DISPATCH_FIELDS = frozenset({"write_iter", "read_iter", "fsync", "writepages"})


# Where code is below other IO: block drivers and storage targets serve a device by doing
# IO on files of any filesystem. The USB storage gadget is not among them: it serves
# another machine's USB host, so this kernel's own IO never waits on it (only a
# dummy_hcd test loop would).
IO_BACKENDS = ("drivers/block/", "drivers/md/", "drivers/nvme/", "drivers/target/",
               "drivers/scsi/", "drivers/mtd/")


def serves_io(path: str) -> bool:
    """Code here services IO for something stacked above it (a device, a filesystem)."""
    if path.startswith(IO_BACKENDS):
        return True
    # A filesystem's own directory; fs/*.c is the VFS core, shared by every user.
    return path.startswith("fs/") and path.count("/") >= 2


def next_origin(origin: str | None, path: str) -> str | None:
    """The origin after a chain steps into a function defined in ``path``.

    Generic code (the VFS core, mm) keeps the chain's origin; anything else is
    the new origin: a chain that went from a storage backend into afs works on
    afs's objects from there on.
    """
    return origin if posixpath.dirname(path) in GENERIC_DIRS else chain_origin(path)


def chain_origin(path: str) -> str | None:
    """Whose operations a generic dispatch reaches on a chain that starts in ``path``.

    A filesystem's own code works on its own objects: the VFS calls back into
    that filesystem. A storage backend (loop, an NVMe or SCSI target) and the
    VFS/mm core (writeback, direct-IO completion) work on any filesystem's
    files. Other code gets no cross-directory dispatch (None): a driver that
    writes one file of its own does not reach every ``->write_iter``.
    """
    home = posixpath.dirname(path)
    if home.startswith("fs/"):
        return home
    return ANY if serves_io(path) or home in GENERIC_DIRS else None
