"""Model layer: typed, pure Python (no AWS or Docker imports)."""
