"""A gfp mask as a set of flags: one possible value of a ``gfp_t`` expression."""

from __future__ import annotations

from dataclasses import dataclass

DIRECT_RECLAIM = "__GFP_DIRECT_RECLAIM"
IO = "__GFP_IO"
FS = "__GFP_FS"
NOFAIL = "__GFP_NOFAIL"

@dataclass(frozen=True)
class Mask:
    """One possible value of a gfp_t expression.

    ``flags`` are atoms known set. When ``unknown`` is false they are the whole
    value; otherwise other atoms may be set too, except those in ``cleared``.
    """

    flags: frozenset[str] = frozenset()
    unknown: bool = False
    cleared: frozenset[str] = frozenset()

    def has(self, atom: str) -> bool | None:
        if atom in self.flags:
            return True
        if not self.unknown or atom in self.cleared:
            return False
        return None

    @property
    def can_block(self) -> bool | None:
        return self.has(DIRECT_RECLAIM)

    @property
    def kind(self) -> str | None:
        """'kernel', 'nofs', 'noio', 'nowait', or None when it cannot be told."""
        block = self.can_block
        if block is False:
            return "nowait"
        fs, io = self.has(FS), self.has(IO)
        if block is None:
            return None
        if io is False:
            return "noio"
        if fs is False:
            return "nofs"
        if fs and io:
            return "kernel"
        return None


UNKNOWN = Mask(unknown=True)
