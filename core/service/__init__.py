"""The HTTP service (``payerpolicy serve``, extra ``server``): Starlette app served by uvicorn.

Layer: above the evaluation core, the formats and the views (it answers with the same renderings as
the CLI); only the CLI imports it.
"""
