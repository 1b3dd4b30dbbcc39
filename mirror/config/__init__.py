"""What the user wrote (the YAML model and its positioned loader) and what follows from it alone: the replication policy (names, filters) and clients built from `client:` blocks."""
