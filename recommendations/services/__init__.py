"""Business logic between the database, the engine and the cache (plain functions)."""
