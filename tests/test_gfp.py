"""GFP masks are flag sets: order, spelling and macros never change the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from nofslint.kernel.gfp import GfpTable
from nofslint.model.gfp import FS, NOFAIL, Mask

TABLE = GfpTable()


@pytest.mark.parametrize(("text", "kind"), [
    ("GFP_KERNEL", "kernel"),
    ("GFP_NOFS", "nofs"),
    ("GFP_NOIO", "noio"),
    ("GFP_KERNEL | GFP_NOFS", "kernel"),
    ("GFP_NOFS | GFP_KERNEL", "kernel"),
    ("GFP_KERNEL & ~__GFP_FS", "nofs"),
    ("GFP_KERNEL & ~(__GFP_FS | __GFP_IO)", "noio"),
    ("GFP_NOFS | __GFP_NOWARN | __GFP_ZERO", "nofs"),
    ("__GFP_ZERO | __GFP_NOWARN | GFP_NOFS", "nofs"),
    ("(__force gfp_t)GFP_NOFS", "nofs"),
    ("GFP_NOFS | __GFP_FS", "kernel"),
    ("GFP_ATOMIC", "nowait"),
    ("GFP_NOWAIT | __GFP_NOWARN", "nowait"),
    ("GFP_NOFS & ~__GFP_DIRECT_RECLAIM", "nowait"),
    ("GFP_USER", "kernel"),
    ("GFP_KERNEL_ACCOUNT", "kernel"),
    ("gfp", None),
    ("gfp & ~__GFP_FS", None),  # cannot tell whether it blocks
    ("mapping_gfp_mask(mapping)", None),
])
def test_kind(text: str, kind: str | None) -> None:
    (mask,) = TABLE.eval(text)
    assert mask.kind == kind


def test_conditional_gives_alternatives() -> None:
    kinds = [m.kind for m in TABLE.eval("nofs ? GFP_NOFS : GFP_KERNEL")]
    assert kinds == ["nofs", "kernel"]


def test_clearing_and_testing_nofail() -> None:
    (mask,) = TABLE.eval("GFP_NOFS | __GFP_NOFAIL")
    assert mask.has(NOFAIL) is True
    (cleared,) = TABLE.eval("(GFP_NOFS | __GFP_NOFAIL) & ~__GFP_NOFAIL")
    assert cleared.has(NOFAIL) is False
    (unknown,) = TABLE.eval("gfp & ~__GFP_NOFAIL")
    assert unknown.has(NOFAIL) is False and unknown.unknown


def test_file_macros_and_variables() -> None:
    macros = {"FOO_GFP": "(GFP_NOFS | __GFP_NOFAIL)", "BAR_GFP": "FOO_GFP & ~__GFP_NOFAIL"}
    (mask,) = TABLE.eval("BAR_GFP", extra=macros)
    assert mask == Mask(TABLE.eval("GFP_NOFS")[0].flags)
    (var,) = TABLE.eval("gfp | __GFP_ZERO", variables={"gfp": TABLE.eval("GFP_NOIO")})
    assert var.kind == "noio"


def test_recursive_macros_do_not_hang() -> None:
    assert TABLE.eval("A", extra={"A": "B | __GFP_FS", "B": "A"})[0].has(FS) is True


def test_unmodelled_text_is_unknown() -> None:
    assert TABLE.eval("a + b")[0].unknown
    assert TABLE.eval("")[0].unknown
    assert TABLE.eval("((GFP_NOFS")[0].unknown


def test_spell_keeps_modifiers() -> None:
    (mask,) = TABLE.eval("GFP_NOFS | __GFP_ZERO")
    assert TABLE.spell(Mask(mask.flags | {"__GFP_IO", "__GFP_FS"})) == "GFP_KERNEL | __GFP_ZERO"


def test_tree_header_is_preferred(tmp_path: Path) -> None:
    """A tree's own gfp_types.h wins over the built-in table (here: an odd GFP_NOFS)."""
    inc = tmp_path / "include" / "linux"
    inc.mkdir(parents=True)
    (inc / "gfp_types.h").write_text(
        "#define ___GFP_IO\t0x40u\n"
        "#define __GFP_IO ((__force gfp_t)___GFP_IO)\n"
        "#define __GFP_RECLAIM ((__force gfp_t)(___GFP_DIRECT_RECLAIM|___GFP_KSWAPD_RECLAIM))\n"
        "#define GFP_KERNEL (__GFP_RECLAIM | __GFP_IO | __GFP_FS)\n"
        "#define GFP_NOFS (__GFP_RECLAIM | \\\n\t__GFP_IO | __GFP_FS)\n")
    table = GfpTable.for_tree(tmp_path)
    assert table.source == "include/linux/gfp_types.h"
    assert table.eval("GFP_NOFS")[0].kind == "kernel"
    assert GfpTable.for_tree(tmp_path / "missing").source.startswith("built-in")


def test_fields_and_helper_calls_are_opaque_values() -> None:
    (mask,) = TABLE.eval("sb->s_gfp | __GFP_NOFAIL")
    assert mask.unknown and mask.has(NOFAIL) is True
    param = Mask(frozenset({"$p3"}), True)
    (flow,) = TABLE.eval("gfp | mapping_gfp_constraint(bdev->bd_mapping, ~__GFP_FS)",
                         variables={"gfp": (param,)})
    assert "$p3" in flow.flags
    assert TABLE.eval("a[i].gfp")[0].unknown
    assert TABLE.eval("x + y")[0].unknown
