"""One config module per task; each defines `get_config(arg=None) -> ConfigDict`."""
