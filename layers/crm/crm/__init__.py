"""The CRM's domain package, shipped to every function as the `crm` Lambda layer."""
