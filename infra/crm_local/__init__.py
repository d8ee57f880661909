"""Local emulation of the CRM's AWS environment (dev-only, never deployed)."""
