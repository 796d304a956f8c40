"""The operator queue: waiting callers, operators, routing with leases, callbacks, figures.

models.py — the vocabulary; store.py — the storage Protocol (embedded SQLite / Redis);
service.py — what the gateway and the operator API call. See README.md.
"""
