"""Pure domain rules: phases, validation, ranking. No storage, no I/O."""
