"""Schema governance: the catalog, compatibility, history, registration and the consumers' guide."""
