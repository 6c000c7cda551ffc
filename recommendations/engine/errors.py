"""The engine's one error type (and its not-fitted flavour)."""


class EngineError(ValueError):
    """Bad input or misuse of the engine: empty data, missing columns, unknown ids, bad k."""


class NotFittedError(EngineError, AttributeError):
    """A method that needs a fitted model was called before `fit`."""
