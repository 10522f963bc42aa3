"""Small edits to a TOML document that keep the user's comments, order and layout.

tomlkit keeps every comment, but it files a comment written *above* a table header
under the table before it (its last lines).  Left alone, adding a key puts the key
under that comment, and removing a table takes with it the comment meant for the
next one.  These helpers treat a table's trailing comments and blank lines as
belonging to what follows: a new key goes before them, and when a table comes or
goes they stay above the header they were written above.

Only public tomlkit names are used; tables are changed in place.
"""

from __future__ import annotations

from collections.abc import MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any

import tomlkit
from tomlkit.items import AoT, Item, Table

if TYPE_CHECKING:
    from collections.abc import Iterator

Parent = MutableMapping[str, Any] | MutableSequence[Any]
Body = list[tuple[Any, Item]]


def _split(table: Table) -> tuple[Body, Body]:
    """A table's own lines and its trailing comments/blank lines (which belong to what follows)."""
    body = list(table.value.body)
    n = len(body)
    while n and body[n - 1][0] is None:
        n -= 1
    return body[:n], body[n:]


def _set_tail(table: Table, tail: Body) -> Body:
    """Replace the table's trailing comment/blank lines with ``tail``; return the old ones.

    The trailing lines carry no key, so taking them off the end of the table's body
    leaves tomlkit's index of keys intact; the new ones go back through ``append``.
    """
    _own, old = _split(table)
    del table.value.body[len(table.value.body) - len(old) :]
    for _key, item in tail:
        table.value.append(None, item)
    return old


def set_value(table: Table, key: str, value: Any) -> None:
    """``table[key] = value``; a new key goes after the table's last key, not its comments."""
    if key in table:
        table[key] = value
        return
    tail = _set_tail(table, [])
    table[key] = value
    _set_tail(table, tail)


def _leaves(items: Body, parent: Parent) -> Iterator[tuple[Parent, str | int, Table]]:
    """Every table with a header, in the order of the file, with where it hangs."""
    for key, item in items:
        if isinstance(item, AoT):
            for i, element in enumerate(item.body):
                yield item, i, element
        elif isinstance(item, Table):
            if item.is_super_table():
                yield from _leaves(list(item.value.body), item)
            else:
                yield parent, key.key, item


def _previous(doc: tomlkit.TOMLDocument, table: Table) -> Table | None:
    """The table whose lines come just before ``table``'s header in the file."""
    before = None
    for _parent, _key, leaf in _leaves(list(doc.body), doc):
        if leaf is table:
            return before
        before = leaf
    return None


def _blank_line() -> Body:
    return [(None, tomlkit.ws("\n"))]


def add_table(doc: tomlkit.TOMLDocument, parent: Parent, name: str | int, values: dict[str, Any]) -> None:
    """Add a table (``parent[name]``, or appended when ``parent`` is an array of tables).

    The comment lines that stood at the end of the table now before it were written
    above the header that followed: they move below the new table, above that header.
    """
    table = tomlkit.table()
    for key, value in values.items():
        table[key] = value
    if isinstance(parent, AoT):
        parent.append(table)
        table = parent[-1]
    else:
        parent[name] = table  # type: ignore[index]
        table = parent[name]  # type: ignore[index]
    previous = _previous(doc, table)
    if previous is not None:
        # tomlkit may have started the new header with a blank line (its indent) already
        gap = [] if "\n" in table.trivia.indent else _blank_line()
        _set_tail(table, _set_tail(previous, gap))


def remove_table(doc: tomlkit.TOMLDocument, parent: Parent, name: str | int) -> None:
    """Remove ``parent[name]``; its trailing comments (above the next header) stay."""
    table = parent[name]  # type: ignore[index]
    previous = _previous(doc, table)
    tail = _set_tail(table, [])
    del parent[name]  # type: ignore[arg-type]
    if previous is not None:
        # the previous table's trailing lines were this table's header comment: they go with it
        _set_tail(previous, tail)


def ensure_table(doc: tomlkit.TOMLDocument, name: str, *, super_table: bool = False) -> Any:
    """The top-level table ``name``, added at the end (after a blank line) when missing."""
    if name not in doc:
        if doc.body and not (doc.body[-1][0] is None and doc.body[-1][1].as_string().strip() == ""):
            doc.add(tomlkit.nl())
        doc[name] = tomlkit.table(is_super_table=super_table)
    return doc[name]
