"""Dialog: the YAML knowledge base and matching caller phrases against it."""
