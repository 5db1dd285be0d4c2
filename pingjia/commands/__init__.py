"""The `pingjia` command groups, one module each, exposing `add_commands` and `run`."""
