"""`ragline serve`: the HTTP API over one index and one model, and the web page.

Importing this package costs nothing: FastAPI is imported by `ragline.serve.app` only, so
`ragline --help` and `ragline keys` do not pay for it.
"""
