"""The dashboard's tables: AG Grid (dash-ag-grid) with the options every table shares."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag

__all__ = ["column", "grid"]

# Grid options of every table: all rows and columns in the page (no virtualisation: what
# the page shows is in the document, for search in the browser and for tests), a page of 25.
OPTIONS: dict[str, Any] = {
    "domLayout": "autoHeight",
    "pagination": True,
    "paginationPageSize": 25,
    "paginationPageSizeSelector": [25, 100, 500],
    "suppressColumnVirtualisation": True,
    "animateRows": False,
    "enableCellTextSelection": True,
    "ensureDomOrder": True,
    "tooltipShowDelay": 300,
}
DEFAULT_COLUMN: dict[str, Any] = {
    "sortable": True,
    "resizable": True,
    "filter": True,
    "floatingFilter": True,
    "suppressHeaderMenuButton": True,
    "minWidth": 90,
    "flex": 1,
}
FILTERS = {"text": "agTextColumnFilter", "number": "agNumberColumnFilter"}


def column(field: str, header: str, *, kind: str = "text", link: bool = False,
           **options: Any) -> dict[str, Any]:  # fmt: skip
    """A column of ``field``, headed ``header``: filtered as text or as numbers; ``link``:
    the cell is a markdown link (:func:`dashboard.components.link_cell`) opened in place."""
    spec: dict[str, Any] = {"field": field, "headerName": header, "filter": FILTERS[kind]}
    if kind == "number":
        spec["type"] = "numericColumn"
    if link:
        spec["cellRenderer"] = "markdown"
    return {**spec, **options}


def grid(ident: str, columns: list[dict[str, Any]], *, row_id: str, selectable: bool = False,
         **options: Any) -> dag.AgGrid:  # fmt: skip
    """A table ``ident`` of ``columns`` whose rows are told apart by their ``row_id`` field
    (what keeps a selection and scroll position across refreshes); ``selectable``: a
    checkbox per row (``selectedRows`` gives them)."""
    grid_options = dict(OPTIONS)
    if selectable:
        grid_options["rowSelection"] = {
            "mode": "multiRow",
            "checkboxes": True,
            "headerCheckbox": True,
            "enableClickSelection": False,
        }
    grid_options.update(options.pop("dashGridOptions", {}))
    return dag.AgGrid(
        id=ident,
        columnDefs=columns,
        rowData=[],
        defaultColDef=DEFAULT_COLUMN,
        getRowId=f"params.data.{row_id}",
        dashGridOptions=grid_options,
        columnSize="responsiveSizeToFit",
        className="grid-table",
        **options,
    )
