"""openear's lowest layer: configuration, storage, domain types, sentiment and ranking."""
