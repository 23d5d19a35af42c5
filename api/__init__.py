"""The HTTP API: authenticates, validates, reads the read model and sends updates to workflows."""
