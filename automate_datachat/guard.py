"""The SQL guard: every data chat query goes through :func:`check` before it can run.

Layers, each a function tested on its own, all failing closed with :class:`SQLRejected`:

1. :func:`parse_statement` — exactly one statement, parsed by sqlglot (postgres dialect), a plain
   SELECT, WITH … SELECT or set operation of selects; :func:`check_nodes` — every node of the
   tree is of an allowed class (so writable CTEs, SELECT INTO, FOR UPDATE/SHARE and anything
   sqlglot only half understands, like an opaque ``Command``, are refused).
2. :func:`resolve_tables` — every relation is one of the dataset's aliases or a CTE visible at
   that point (with Postgres' scoping: a CTE may shadow an alias); no schema-qualified names,
   no other relation, table functions only from an allowlist; columns qualified by a dataset
   table must be among its allowed columns. CTEs are renamed to server-made names, so no name
   in the final SQL can resolve to a relation the guard did not pick.
3. also in :func:`check_nodes` — functions, operators and cast types from allowlists only.
4. :func:`rewrite_tables` — each dataset table reference becomes a subquery over the backing
   relation that projects only the allowed columns and keeps only the tenant's rows (the
   tenant id is a literal from the bound dataset, never from the query) and the row filters.
   Whatever the query joins, unions, filters or nests, it only ever sees those subqueries.
5. :func:`cap_limit` — the outermost LIMIT is at most ``row_cap + 1`` (the extra row tells the
   executor the result was truncated).

What runs is the SQL sqlglot generates from the checked and rewritten tree (comments dropped),
never the text that was submitted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import SqlglotError
from sqlglot.generators.postgres import PostgresGenerator

from automate_datachat import allowlist
from automate_datachat.definitions import DatasetDefinition, TableDefinition
from automate_datachat.errors import SQLRejected

if TYPE_CHECKING:
    from automate_datachat.models import Dataset

__all__ = [
    "GuardedSQL",
    "bind_parameters",
    "cap_limit",
    "check",
    "check_nodes",
    "check_uncached",
    "parse_statement",
    "resolve_tables",
    "rewrite_tables",
]

# Postgres reads U&'...' / U&"..." as escaped text; sqlglot does not (it sees `U & "..."`).
_UNICODE_ESCAPE = re.compile(r"u&\s*['\"]", re.IGNORECASE)
_QUERY = (exp.Select, exp.SetOperation)


@dataclass(frozen=True)
class GuardedSQL:
    """SQL that passed every layer, rewritten for one tenant, ready for the executor."""

    sql: str
    dataset: str
    tenant_id: str
    #: The dataset aliases the query reads.
    tables: tuple[str, ...]
    #: The outermost LIMIT after capping (``row_cap + 1`` unless the query asked for fewer).
    limit: int
    row_cap: int
    #: The names of the values to bind, in the order of ``$1``, ``$2``... in ``sql``.
    parameters: tuple[str, ...] = ()


def check(
    sql: str, dataset: Dataset | DatasetDefinition, params: Collection[str] | None = None
) -> GuardedSQL:
    """Run every layer on ``sql`` against ``dataset`` (a ``Dataset`` row, or a definition bound
    to a tenant) and return the SQL to run. Raises :class:`SQLRejected`.

    With ``params`` (the names of the values the caller will bind), ``:name`` placeholders
    naming them become Postgres' positional parameters (see :func:`bind_parameters`); without,
    any placeholder is refused.

    Accepted results are memoised per (``sql``, definition, parameter names): the layers are a
    pure function of those and :class:`GuardedSQL` is frozen, so a repeated query (a workflow
    step, a dashboard refresh) gets the same checked SQL without parsing it again. Refusals
    are not memoised."""
    definition = dataset if isinstance(dataset, DatasetDefinition) else dataset.definition()
    names = None if params is None else frozenset(params)
    try:
        hash(definition)
    except TypeError:  # a sample value that is a list or a dict
        return check_uncached(sql, definition, names)
    return _memoised_check(sql, definition, names)


def check_uncached(
    sql: str, definition: DatasetDefinition, params: Collection[str] | None = None
) -> GuardedSQL:
    """:func:`check` without the memo: every layer, every time."""
    if definition.tenant_id is None:
        raise ValueError("check() needs a dataset bound to a tenant (DatasetDefinition.bind)")
    tree = parse_statement(sql)
    parameters = bind_parameters(tree, params) if params is not None else ()
    check_nodes(tree, parameters=bool(parameters))
    references = resolve_tables(tree, definition)
    rewrite_tables(references, definition)
    limit = cap_limit(tree, definition.row_cap)
    return GuardedSQL(
        sql=_Generator(dialect=_POSTGRES, comments=False).generate(tree),
        dataset=definition.slug,
        tenant_id=definition.tenant_id,
        tables=tuple(sorted({table.alias for _, table in references})),
        limit=limit,
        row_cap=definition.row_cap,
        parameters=parameters,
    )


_memoised_check = functools.lru_cache(maxsize=1024)(check_uncached)


# -- layer 1: one plain query ------------------------------------------------------------------


def parse_statement(sql: str) -> exp.Expression:
    """Parse exactly one statement that is a query (SELECT, WITH … SELECT, UNION/INTERSECT/
    EXCEPT of those)."""
    if _UNICODE_ESCAPE.search(sql):
        raise SQLRejected(
            "Unicode-escape strings and identifiers (U&) are not accepted.", reason="unicode_escape"
        )
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except SqlglotError as exc:
        raise SQLRejected(f"The SQL could not be parsed: {exc}", reason="parse_error") from exc
    if len(statements) != 1:
        raise SQLRejected(
            f"Exactly one statement is accepted, got {len(statements)}.", reason="statement_count"
        )
    tree = statements[0]
    if not isinstance(tree, _QUERY):
        raise SQLRejected(
            f"Only SELECT queries are accepted, not {type(tree).__name__}.",
            reason="not_a_query",
            node=tree,
        )
    return tree


def bind_parameters(tree: exp.Expression, names: Collection[str]) -> tuple[str, ...]:
    """Replace each ``:name`` placeholder (``name`` one of ``names``) by a positional ``$n``,
    the same ``n`` for the same name; return the names in position order. Values are then sent
    as bind parameters, never spliced into the text: whatever a value contains stays a value.
    Positional parameters in the submitted SQL, and other placeholder forms, are refused."""
    order: list[str] = []
    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        name = node.this if isinstance(node, exp.Placeholder) else None
        if not isinstance(name, str) or not name:
            raise SQLRejected(
                "Parameters are written :name.", reason="parameter_not_allowed", node=node
            )
        if name not in names:
            raise SQLRejected(
                f"No value is given for parameter :{name}.", reason="unknown_parameter", node=node
            )
        if name not in order:
            order.append(name)
        node.replace(exp.Parameter(this=exp.Literal.number(order.index(name) + 1)))
    return tuple(order)


def check_nodes(tree: exp.Expression, *, parameters: bool = False) -> None:
    """Every node of an allowed class; functions, cast types and bare words from allowlists.
    ``parameters``: the positional parameters :func:`bind_parameters` made are allowed."""
    for node in tree.walk():
        kind = type(node)
        if kind is exp.Parameter and parameters:
            continue
        if kind is exp.Anonymous:
            name = node.name.lower()
            if name not in allowlist.ANONYMOUS_FUNCTIONS or node.this != node.name:
                raise SQLRejected(
                    f"Function {node.name!r} is not allowed.",
                    reason="function_not_allowed",
                    node=node,
                )
        elif kind is exp.DataType:
            if node.this not in allowlist.CAST_TYPES:
                raise SQLRejected(
                    f"Type {node.sql(dialect='postgres')} is not allowed.",
                    reason="type_not_allowed",
                    node=node,
                )
        elif kind is exp.Var:
            if type(node.parent) not in allowlist.VAR_PARENTS or not node.name.isalpha():
                raise SQLRejected("Unexpected keyword.", reason="node_not_allowed", node=node)
        elif kind not in allowlist.ALLOWED_NODES:
            raise SQLRejected(
                f"{kind.__name__} is not allowed in a data chat query.",
                reason="node_not_allowed",
                node=node,
            )


# -- layer 2: only the dataset's tables and columns ---------------------------------------------

#: A scope's sources by the name columns use: a dataset table, or None (CTE, subquery, function).
_Sources = dict[str, TableDefinition | None]


def resolve_tables(
    tree: exp.Expression, dataset: DatasetDefinition
) -> list[tuple[exp.Table, TableDefinition]]:
    """Check every relation and qualified column; rename CTEs; return the dataset table
    references to rewrite."""
    resolver = _Resolver(dataset, tree)
    resolver.query(tree, visible={}, outer=[])
    for table in tree.find_all(exp.Table):
        if id(table) not in resolver.seen:  # a relation in a place the resolver does not know
            raise SQLRejected("Unexpected table reference.", reason="table_not_allowed", node=table)
    return resolver.references


class _Resolver:
    def __init__(self, dataset: DatasetDefinition, tree: exp.Expression) -> None:
        self.dataset = dataset
        self.tree = tree
        self.references: list[tuple[exp.Table, TableDefinition]] = []
        self.cte_count = 0
        self.seen: set[int] = set()

    @functools.cached_property
    def output_names(self) -> frozenset[str]:
        """Names the query itself defines for columns (only read for an unknown column)."""
        names = {node.alias for node in self.tree.find_all(exp.Alias)}
        for alias in self.tree.find_all(exp.TableAlias):
            names.update(_name(column) for column in alias.columns)
        return frozenset(names)

    def query(self, node: exp.Expression, visible: dict[str, str], outer: list[_Sources]) -> None:
        """A Select or set operation, with the CTE names visible to it (name -> new name)."""
        visible = self.with_clause(node, visible, outer)
        if isinstance(node, exp.SetOperation):
            for side in (node.this, node.expression):
                self.query(side, visible, outer)
            self.nested(node, visible, outer, skip=(node.this, node.expression))
        elif isinstance(node, exp.Select):
            self.select(node, visible, outer)
        else:  # pragma: no cover - parse_statement and check_nodes only let queries through
            raise SQLRejected("Unexpected query shape.", reason="node_not_allowed", node=node)

    def with_clause(
        self, node: exp.Expression, visible: dict[str, str], outer: list[_Sources]
    ) -> dict[str, str]:
        with_ = node.args.get("with_")
        if not with_:
            return visible
        ctes = list(with_.expressions)
        renamed = {}
        for cte in ctes:
            name = _name(cte.args["alias"].this)
            if name in renamed:
                raise SQLRejected(
                    f"CTE {name!r} is defined twice.", reason="duplicate_cte", node=cte
                )
            self.cte_count += 1
            renamed[name] = f"_dc_cte_{self.cte_count}"
        inner = dict(visible)
        for cte in ctes:
            name = _name(cte.args["alias"].this)
            # A recursive WITH sees all its CTEs; a plain one only those defined before.
            if with_.args.get("recursive"):
                inner.update(renamed)
            self.query(cte.this, inner, outer)
            inner[name] = renamed[name]
            cte.args["alias"].set("this", exp.to_identifier(renamed[name]))
        return {**visible, **renamed}

    def select(self, node: exp.Select, visible: dict[str, str], outer: list[_Sources]) -> None:
        sources: _Sources = {}
        for source in _sources_of(node):
            self.source(source, sources, visible, outer)
        self.nested(node, visible, [sources, *outer], skip=())
        for column in _own(node, exp.Column):
            self.column(cast(exp.Column, column), [sources, *outer])

    def source(
        self,
        source: exp.Expression,
        sources: _Sources,
        visible: dict[str, str],
        outer: list[_Sources],
    ) -> None:
        alias = source.args.get("alias")
        alias_name = _name(alias.this) if alias is not None and alias.this else None
        if isinstance(source, exp.Table):
            self.seen.add(id(source))
            extra = [k for k, v in source.args.items() if v and k not in {"this", "alias"}]
            if extra:
                raise SQLRejected(
                    "Schema-qualified names and table options are not accepted.",
                    reason="table_not_allowed",
                    node=source,
                )
            target = source.this
            if isinstance(target, exp.Identifier):
                name = _name(target)
                if name in visible:
                    target.replace(exp.to_identifier(visible[name]))
                    if alias_name is None:
                        source.set("alias", exp.TableAlias(this=exp.to_identifier(name)))
                    sources[alias_name or name] = None
                    return
                table = self.dataset.table(name)
                if table is None:
                    raise SQLRejected(
                        f"Unknown table {name!r}.", reason="table_not_allowed", node=source
                    )
                self.references.append((source, table))
                sources[alias_name or name] = table
                return
            if type(target) not in allowlist.TABLE_FUNCTIONS:
                raise SQLRejected(
                    "Only generate_series and unnest may be used as tables.",
                    reason="table_not_allowed",
                    node=source,
                )
        elif isinstance(source, exp.Lateral | exp.Unnest):
            inner = source.this
            if (
                isinstance(source, exp.Lateral)
                and type(inner) not in allowlist.TABLE_FUNCTIONS
                and not isinstance(inner, exp.Subquery)
            ):
                raise SQLRejected(
                    "Unexpected LATERAL source.", reason="table_not_allowed", node=source
                )
        elif not isinstance(source, exp.Subquery):
            raise SQLRejected("Unexpected FROM source.", reason="table_not_allowed", node=source)
        if alias_name:
            sources[alias_name] = None

    def nested(
        self,
        node: exp.Expression,
        visible: dict[str, str],
        outer: list[_Sources],
        skip: tuple[exp.Expression, ...],
    ) -> None:
        for query in _own(node, *_QUERY):
            if not any(query is s for s in skip):
                self.query(query, visible, outer)

    def column(self, column: exp.Column, scopes: list[_Sources]) -> None:
        name = column.name
        qualifier = _name(column.args["table"]) if column.args.get("table") else ""
        if column.args.get("db") or column.args.get("catalog"):
            raise SQLRejected(
                "Schema-qualified columns are not accepted.",
                reason="column_not_allowed",
                node=column,
            )
        if qualifier:
            for sources in scopes:
                if qualifier in sources:
                    table = sources[qualifier]
                    if table is not None and name != "*" and name not in table.column_names:
                        raise SQLRejected(
                            f"Column {name!r} is not allowed in {table.alias!r}.",
                            reason="column_not_allowed",
                            node=column,
                        )
                    return
            raise SQLRejected(
                f"Unknown table {qualifier!r}.", reason="table_not_allowed", node=column
            )
        if any(None in sources.values() for sources in scopes) or name in self.output_names:
            return  # a CTE or subquery column, or an output alias (ORDER BY total)
        if not any(
            table is not None and name in table.column_names
            for sources in scopes
            for table in sources.values()
        ):
            raise SQLRejected(f"Unknown column {name!r}.", reason="column_not_allowed", node=column)


def _name(identifier: exp.Expression) -> str:
    """The name Postgres resolves: unquoted identifiers fold to lower case."""
    text = identifier.name
    return text if identifier.args.get("quoted") else text.lower()


def _sources_of(select: exp.Select) -> Iterator[exp.Expression]:
    from_ = select.args.get("from_")
    if from_ is not None:
        yield from_.this
    for join in select.args.get("joins") or ():
        yield join.this


def _own(node: exp.Expression, *kinds: type[exp.Expression]) -> Iterator[exp.Expression]:
    """Nodes of ``kinds`` in ``node``'s own scope: not inside a nested query or its WITH."""
    stack = [child for key, child in _children(node) if key != "with_"]
    while stack:
        child = stack.pop()
        if isinstance(child, kinds):
            yield child
        if not isinstance(child, _QUERY):
            stack.extend(grandchild for _, grandchild in _children(child))


def _children(node: exp.Expression) -> Iterator[tuple[str, exp.Expression]]:
    for key, value in node.args.items():
        if isinstance(value, exp.Expression):
            yield key, value
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, exp.Expression):
                    yield key, item


# -- layer 4: tenant-scoped subqueries ----------------------------------------------------------


def rewrite_tables(
    references: list[tuple[exp.Table, TableDefinition]], dataset: DatasetDefinition
) -> None:
    """Replace each dataset table reference with its tenant-scoped subquery, keeping the name
    the query uses for it (its alias, or the dataset alias)."""
    tenant_id = cast(str, dataset.tenant_id)
    for node, table in references:
        alias = node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table.alias))
        node.replace(ScopedRelation(this=scoped_select_sql(table, tenant_id), alias=alias))


class ScopedRelation(exp.Expression):
    """A dataset table rewritten to its tenant-scoped subquery. ``this`` holds that subquery's
    SQL, generated by sqlglot from server-side values only (once per table and tenant), so a
    query's rewrite costs no tree copies and no regeneration of the same subquery."""

    arg_types = {"this": True, "alias": True}


class _Generator(PostgresGenerator):
    TRANSFORMS = {
        **PostgresGenerator.TRANSFORMS,
        ScopedRelation: lambda self, node: f"({node.this}) AS {self.sql(node, 'alias')}",
    }


_POSTGRES = Postgres()


@functools.lru_cache(maxsize=1024)
def scoped_select_sql(table: TableDefinition, tenant_id: str) -> str:
    """``SELECT <allowed columns> FROM <relation> WHERE <tenant> AND <row filters>``."""
    schema, name = table.schema_and_name
    relation = exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(schema, quoted=True) if schema else None,
    )
    conditions: list[exp.Expression] = []
    if table.tenant_column:
        conditions.append(
            exp.EQ(this=_quoted(table.tenant_column), expression=exp.Literal.string(tenant_id))
        )
    for column, values in table.row_filters:
        literals = [_literal(value) for value in values]
        conditions.append(
            exp.EQ(this=_quoted(column), expression=literals[0])
            if len(literals) == 1
            else exp.In(this=_quoted(column), expressions=literals)
        )
    if not conditions and not table.tenant_owned:  # pragma: no cover - validate() refuses it
        raise ValueError(f"table {table.alias!r} has no tenant scoping")
    select = exp.Select(expressions=[_quoted(c) for c in table.column_names]).from_(relation)
    if conditions:
        select = select.where(exp.and_(*conditions), copy=False)
    return select.sql(dialect="postgres", comments=False)


def _quoted(column: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(column, quoted=True))


def _literal(value: str | int | float | bool) -> exp.Expression:
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


# -- layer 5: row cap ---------------------------------------------------------------------------


def cap_limit(tree: exp.Expression, row_cap: int) -> int:
    """Cap the outermost LIMIT at ``row_cap + 1``; keep a smaller literal LIMIT as written."""
    ceiling = row_cap + 1
    limit = tree.args.get("limit")
    asked = limit.expression if limit is not None else None
    if (
        isinstance(asked, exp.Literal)
        and not asked.is_string
        and asked.name.isdigit()
        and int(asked.name) <= ceiling
    ):
        return int(asked.name)
    tree.set("limit", exp.Limit(expression=exp.Literal.number(ceiling)))
    return ceiling
