"""Images in a registry: read their variants, and publish one list from many."""
