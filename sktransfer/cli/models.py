"""``sktransfer models``: the model specs, their blocks, what works offline."""

from __future__ import annotations


def run_models(args):
    from sktransfer.backbones import list_model_rows
    from sktransfer.cli._rank import run_rank

    if run_rank(args):  # --rank DATA
        return

    # The static part (block counts, weight file names) is read from the shipped
    # catalog: no torch import, so the table takes a fraction of a second.
    print(plain_table(list_model_rows(blocks=True)))


def plain_table(rows: list[dict]) -> str:
    """``DataFrame(rows).to_string(index=False)`` without pandas: right-aligned
    columns one space apart, None shown as ``<NA>``, and (as pandas does) one
    more space before number and bool columns."""
    columns = list(rows[0])
    cells = [columns] + [["<NA>" if row[c] is None else str(row[c]) for c in columns]
                         for row in rows]
    widths = [max(len(line[i]) for line in cells)
              + (not any(isinstance(row[c], str) for row in rows))
              for i, c in enumerate(columns)]
    return "\n".join(
        " ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    )
