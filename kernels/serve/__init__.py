"""Model serving for the deployment tasks (9.03 FastAPI, 9.06 REST API, 9.07 Flask).

``schemas`` (pydantic payloads and stated limits), ``model`` (the digits MLP, its files and
the version registry), ``fastapi_app`` and ``flask_app`` (the servers' apps), ``main`` (the
server process entry point), ``contract`` (the checks and the load bench every server
shares) and ``wrong`` (the mutants). Importing this package imports nothing heavy: the
server entry point must not load torch before gunicorn forks its workers.
"""
