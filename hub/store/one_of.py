"""``one_of(column, "name")``: ``column IN (...)`` with the list bound at execution as ``name``.

SQLite gets an expanding IN. PostgreSQL gets ``column = ANY(%(name)s)`` with the list as one
array parameter: an IN of hundreds of parameters makes a query text psycopg parses anew each
time (its statement cache skips long queries), which cost a listing a fifth of its time.
"""

from __future__ import annotations

from sqlalchemy import bindparam
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
