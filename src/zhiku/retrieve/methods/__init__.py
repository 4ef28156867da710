"""One module per method kind; each registers its kinds in ``zhiku.retrieve.base.methods``."""
