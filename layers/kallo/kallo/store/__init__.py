"""The single-table data access layer. Keys are built only in `keys`; see its docstring for the chart."""
