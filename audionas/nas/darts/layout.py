"""Which cells of a DARTS network are reduction cells."""

from __future__ import annotations

from audionas.errors import UserError


def reduction_cells(cells: int, layout: str = "darts") -> list[bool]:
    """`darts`: reductions at L//3 and 2L//3 (N N R N R N for 6); `nnr`: every two normal cells are followed
    by a reduction (the KWS paper's wording: N N R N N R); or an explicit string of N/R, one letter per cell.

    Choice: `darts` is the default (REFERENCE.md: the paper's 12-cell parameter counts fit only this rule).
    The KWS paper's literal "stacking the 6-cell network twice" for 12 cells is `NNRNRNNNRNRN`.
    """
    if cells < 1:
        raise UserError(f"config field 'cells': expected at least 1 cell, got {cells}")
    if layout == "darts":
        return [i in (cells // 3, 2 * cells // 3) for i in range(cells)]
    if layout == "nnr":
        return [(i + 1) % 3 == 0 for i in range(cells)]
    s = layout.upper()
    if len(s) != cells or set(s) - {"N", "R"}:
        raise UserError(
            f"config field 'layout': expected darts, nnr or a string of {cells} N/R letters, got '{layout}'"
        )
    return [c == "R" for c in s]
