"""Request routing: pure rule compilation and matching. Stdlib only, no I/O."""
