"""The one error of the bench: something it needs is missing or failed; it says what."""


class BenchError(Exception):
    pass
