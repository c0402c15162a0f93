"""The web dashboard: a small ASGI app that shows a workspace's ledger live.

- `api`: JSON-ready views of the ledger (sessions, experiments, metrics, diffs, logs). No web
  framework in it, so it is tested on its own.
- `surprisal`: the experiment page's surprisal panel, through `autolab.inspect`'s code, with
  the loaded models kept.
- `app`: the Starlette app (routes, token check, server-sent events) and `serve`, which binds
  the socket and runs uvicorn.
- `static/`: the page, hand-written; plotly.js is served from the installed `plotly` wheel.

The dashboard reads the ledger and never writes it; its only write is the stop request file,
the same one `autolab stop` creates.
"""
