"""``one_of(column, "name")``: ``column IN (...)`` with the list bound at execution as ``name``.

SQLite gets an expanding IN. PostgreSQL gets ``column = ANY(%(name)s)`` with the list as one
array parameter: an IN of hundreds of parameters makes a query text psycopg parses anew each
time (its statement cache skips long queries), which cost a listing a fifth of its time.
SQLite (3.38 and later, where JSON is built in) gets ``column IN (SELECT value FROM
json_each(?))`` with the list as one JSON text: an expanding IN renders a parameter per value
in Python at each execution (a listing's page binds some 1,500), json_each reads them in C;
the planner still searches the column's index once per value.
"""

from __future__ import annotations

import json
import sqlite3

from sqlalchemy import Text, TypeDecorator, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType


class OneOf(ColumnElement):
    inherit_cache = True
    # not Boolean: SQLite would get "(... IN (...)) = 1", which no index serves
    type = NullType()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement), ("name", InternalTraversal.dp_string)]

    def __init__(self, column, name: str):
        self.column = column
        self.name = name


def one_of(column, name: str) -> OneOf:
    return OneOf(column, name)


@compiles(OneOf)
def _in_list(element: OneOf, compiler, **kw) -> str:
    return compiler.process(element.column.in_(bindparam(element.name, expanding=True)), **kw)


@compiles(OneOf, "postgresql")
def _any_array(element: OneOf, compiler, **kw) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(bindparam(element.name), **kw)})"


class _JsonList(TypeDecorator):
    """A list of ids or codes (ints, strings) bound as one JSON text, for ``json_each``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return json.dumps(list(value))


@compiles(OneOf, "sqlite")
def _json_each(element: OneOf, compiler, **kw) -> str:
    if sqlite3.sqlite_version_info < (3, 38):  # JSON may not be compiled in
        return _in_list(element, compiler, **kw)
    values = compiler.process(bindparam(element.name, type_=_JsonList()), **kw)
    return f"{compiler.process(element.column, **kw)} IN (SELECT value FROM json_each({values}))"
