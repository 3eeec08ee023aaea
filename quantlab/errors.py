"""The project's exception types.

Bad arguments raise the builtin ``ValueError`` / ``TypeError`` naming the argument.
Requests that are well-formed but cannot be met by the data (too few observations,
unknown symbol, a store held by another writer) raise a :class:`QuantlabError` subclass.
"""

from __future__ import annotations


class QuantlabError(Exception):
    """Base class of quantlab's domain errors; the CLI prints these as one line."""


class InsufficientDataError(QuantlabError, ValueError):
    """Too few observations (or too little overlap) for the requested computation."""


class UnknownSymbolError(QuantlabError, KeyError):
    """A symbol that the store or the exchange does not know."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it plain
        return str(self.args[0]) if self.args else "unknown symbol"


class StoreLockedError(QuantlabError):
    """Another live process holds the store's writer lock."""


class StoreCorruptError(QuantlabError):
    """A store file cannot be read (not HDF5, truncated, wrong schema)."""


class LayoutError(QuantlabError):
    """An input file whose layout is not one quantlab knows."""


class StoreIdentityError(QuantlabError):
    """A writer whose data source does not match the store's (demo vs real exchange data)."""
