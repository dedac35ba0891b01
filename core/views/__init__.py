"""Views: what a person reads — text and JSON renderings, the compare grid, HTML pages, charts, the report.

``grid`` is the one model behind every compare format (table, markdown, csv, json, html); ``render``
writes check/compare/explain output; ``pages`` the self-contained HTML pages; ``charts`` inline SVG
charts (extra ``report``); ``report`` the monthly report over batch output; ``whatif`` the ``--set``
what-if assignments.

Layer: imports the evaluation core, the formats and (for the report) batch output reading; nothing
below imports a view.
"""
