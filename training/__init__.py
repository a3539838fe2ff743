"""Training code that reproduces the models the backend runs; it imports the backend, never the reverse."""
