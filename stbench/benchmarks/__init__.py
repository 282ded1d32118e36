"""Built-in benchmark definitions (YAML) and their training scripts."""
