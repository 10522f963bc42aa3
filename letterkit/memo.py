"""What a template read: the render memo's bookkeeping.

:class:`letterkit.letters.Renderer` renders a letter once for every distinct set of
values a template actually read (a recipient's salutation and language, say, but not
their id).  :class:`ReadRecorder` and :class:`ReadList` are the views a template sees
while it renders; they note what it looked at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Iterator

_MISSING = object()
PRIMARY = "\x00primary"  # in a memo's field list: the template read ``primary`` (no field has this name)


def memo_values(recipient: dict[str, Any], primary: Any, fields: tuple[str, ...]) -> tuple[Hashable, ...]:
    """The values a memoised result depends on: the recipient fields read, and ``primary``."""
    return tuple(_freeze(primary) if f == PRIMARY else _freeze(recipient.get(f, _MISSING)) for f in fields)


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value  # type: ignore[no-any-return]


class ReadRecorder(dict[str, Any]):
    """A recipient view that notes which fields a template reads.

    A template that reads the whole mapping (iterates it, prints it, calls
    ``items()``) is recorded as reading every field.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def _all(self) -> None:
        self.read.update(super().keys())

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._all()
        return super().__iter__()

    def __len__(self) -> int:
        self._all()
        return super().__len__()

    def keys(self) -> Any:
        self._all()
        return super().keys()

    def values(self) -> Any:
        self._all()
        return super().values()

    def items(self) -> Any:
        self._all()
        return super().items()

    def __repr__(self) -> str:
        self._all()
        return super().__repr__()

    __str__ = __repr__


class ReadList(list[Any]):
    """A list that notes whether a template looked at it at all (its items, its length,
    its truth, any method); ``seen`` itself is the only attribute that does not count."""

    def __init__(self, items: Iterable[Any]) -> None:
        super().__init__(items)
        self.seen = False

    def __getattribute__(self, name: str) -> Any:
        if name != "seen":
            object.__setattr__(self, "seen", True)
        return super().__getattribute__(name)

    def _saw(self) -> None:
        object.__setattr__(self, "seen", True)

    def __iter__(self) -> Iterator[Any]:
        self._saw()
        return super().__iter__()

    def __reversed__(self) -> Iterator[Any]:
        self._saw()
        return super().__reversed__()

    def __len__(self) -> int:
        self._saw()
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        self._saw()
        return super().__getitem__(index)

    def __contains__(self, item: object) -> bool:
        self._saw()
        return super().__contains__(item)

    def __eq__(self, other: object) -> bool:
        self._saw()
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._saw()
        return super().__ne__(other)

    def __lt__(self, other: list[Any]) -> bool:
        self._saw()
        return super().__lt__(other)

    def __le__(self, other: list[Any]) -> bool:
        self._saw()
        return super().__le__(other)

    def __gt__(self, other: list[Any]) -> bool:
        self._saw()
        return super().__gt__(other)

    def __ge__(self, other: list[Any]) -> bool:
        self._saw()
        return super().__ge__(other)

    def __add__(self, other: Any) -> Any:
        self._saw()
        return list(self) + list(other)

    def __radd__(self, other: Any) -> Any:
        self._saw()
        return list(other) + list(self)

    def __mul__(self, n: Any) -> Any:
        self._saw()
        return list(self) * n

    __rmul__ = __mul__
    __hash__ = None

    def __repr__(self) -> str:
        self._saw()
        return super().__repr__()
