"""The CRM's domain package, shipped to every function as the `crm` Lambda layer.

In a Lambda container its import starts the cold start's garbage-collector mode, which the
handler module ends with `crm.coldstart.initialized()` (see crm/coldstart.py)."""

from crm import coldstart

if coldstart.in_lambda():
    coldstart.begin()
