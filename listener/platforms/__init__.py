"""Platform adapters: one module per external service."""
