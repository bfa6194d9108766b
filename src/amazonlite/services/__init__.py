"""One package per service, each laid out the same way (see CONVENTIONS.md)."""
