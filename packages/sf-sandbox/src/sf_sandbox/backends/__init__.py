"""Where containers (or, unsafely, processes) for the supervisor come from."""
