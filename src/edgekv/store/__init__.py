"""Storage engines behind the `Store` protocol (edgekv._types): memory, sqlite, postgres."""

__all__: list[str] = []
