"""What the guard lets through: expression node classes, functions, cast types.

Everything is an allowlist; a node, function or type not named here is refused, including the
ones a newer sqlglot adds. Functions sqlglot does not model become ``exp.Anonymous`` nodes and
are checked by name against :data:`ANONYMOUS_FUNCTIONS`.

All allowed functions are pure or only read the clock: no I/O, sequences, settings, locks,
sleeps or catalog access. ``now()`` / ``CURRENT_DATE`` / ``CURRENT_TIMESTAMP`` are allowed so
"last quarter" can be asked; their results move with the clock (docs/datachat.md).
"""

from __future__ import annotations

from sqlglot import exp


def _classes(*names: str) -> frozenset[type[exp.Expression]]:
    # getattr fails loudly at import if a sqlglot upgrade renames a class we rely on.
    return frozenset(getattr(exp, name) for name in names)


#: Queries: the statement shapes and their clauses.
QUERY_NODES = _classes(
    "Select",
    "Union",
    "Intersect",
    "Except",
    "Subquery",
    "With",
    "CTE",
    "From",
    "Join",
    "Lateral",
    "Where",
    "Group",
    "GroupingSets",
    "Cube",
    "Rollup",
    "Having",
    "Order",
    "Ordered",
    "Limit",
    "Offset",
    "Distinct",
    "Window",
    "WindowSpec",
    "Filter",
    "WithinGroup",
    "Table",
    "TableAlias",
    "Alias",
    "Column",
    "Identifier",
    "Star",
    "Paren",
    "Tuple",
    "Unnest",
)

#: Values and operators.
VALUE_NODES = _classes(
    "Literal",
    "Null",
    "Boolean",
    "Interval",
    "Array",
    "Bracket",
    "Cast",
    "DataType",
    "DataTypeParam",
    "Case",
    "If",
    "Exists",
    "In",
    "Between",
    "Like",
    "ILike",
    "Is",
    "Not",
    "And",
    "Or",
    "EQ",
    "NEQ",
    "GT",
    "GTE",
    "LT",
    "LTE",
    "NullSafeEQ",
    "NullSafeNEQ",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Mod",
    "Neg",
    "DPipe",
    "RegexpLike",
    "RegexpILike",
    "Any",
    "All",
    "JSONExtract",
    "JSONExtractScalar",
    "JSONBExtract",
    "JSONBExtractScalar",
    "JSONBContains",
    "JSONPath",
    "JSONPathKey",
    "JSONPathRoot",
    "JSONPathSubscript",
)

#: Functions sqlglot models as their own classes.
FUNCTION_NODES = _classes(
    # aggregates
    "Count",
    "Sum",
    "Avg",
    "Min",
    "Max",
    "Stddev",
    "StddevPop",
    "StddevSamp",
    "Variance",
    "VariancePop",
    "ArrayAgg",
    "GroupConcat",
    "PercentileCont",
    "PercentileDisc",
    "Corr",
    "CovarSamp",
    "CovarPop",
    "LogicalAnd",
    "LogicalOr",
    # window
    "RowNumber",
    "Rank",
    "DenseRank",
    "PercentRank",
    "CumeDist",
    "Ntile",
    "Lag",
    "Lead",
    "FirstValue",
    "LastValue",
    "NthValue",
    # math
    "Abs",
    "Ceil",
    "Floor",
    "Round",
    "Sqrt",
    "Exp",
    "Ln",
    "Log",
    "Pow",
    "Sign",
    # conditional
    "Coalesce",
    "Nullif",
    "Greatest",
    "Least",
    # string
    "Lower",
    "Upper",
    "Length",
    "Substring",
    "Trim",
    "Concat",
    "ConcatWs",
    "Left",
    "Right",
    "SplitPart",
    "StrPosition",
    "Initcap",
    "RegexpReplace",
    "Pad",
    "Replace",
    # date and time
    "TimestampTrunc",
    "DateTrunc",
    "Extract",
    "CurrentDate",
    "CurrentTimestamp",
    "TimeToStr",
    "StrToTime",
    "StrToDate",
    # table functions (only in FROM; see TABLE_FUNCTIONS)
    "ExplodingGenerateSeries",
    "GenerateSeries",
)

ALLOWED_NODES = QUERY_NODES | VALUE_NODES | FUNCTION_NODES

#: Functions sqlglot does not model (lower-case names), pure ones only.
ANONYMOUS_FUNCTIONS = frozenset(
    {
        "age",
        "date_part",
        "make_date",
        "make_interval",
        "justify_days",
        "justify_hours",
        "to_char",
        "to_date",
        "to_timestamp",
        "btrim",
        "ltrim",
        "rtrim",
        "lpad",
        "rpad",
        "translate",
        "char_length",
        "octet_length",
        "width_bucket",
        "trunc",
        "cbrt",
        "div",
        "isfinite",
        "json_typeof",
        "jsonb_typeof",
        "json_array_length",
        "jsonb_array_length",
        "jsonb_extract_path_text",
        "json_extract_path_text",
        "array_length",
        "cardinality",
        "array_position",
        "regexp_match",
        "starts_with",
        "num_nonnulls",
        "num_nulls",
        "date_bin",
        "mode",
        "bool_and",
        "bool_or",
        "every",
        "regr_slope",
        "regr_intercept",
    }
)

#: Set-returning functions allowed as a FROM / JOIN / LATERAL source.
TABLE_FUNCTIONS = _classes("ExplodingGenerateSeries", "GenerateSeries", "Unnest")

_T = exp.DataType.Type
#: Types a CAST (or ``::``) may name: no reg* object identifiers, no user-defined types.
CAST_TYPES = frozenset(
    {
        _T.SMALLINT,
        _T.INT,
        _T.BIGINT,
        _T.DECIMAL,
        _T.DOUBLE,
        _T.FLOAT,
        _T.TEXT,
        _T.VARCHAR,
        _T.CHAR,
        _T.BOOLEAN,
        _T.DATE,
        _T.TIME,
        _T.TIMESTAMP,
        _T.TIMESTAMPTZ,
        _T.INTERVAL,
        _T.JSON,
        _T.JSONB,
        _T.UUID,
        _T.ARRAY,
    }
)

#: Parents under which a bare word (``exp.Var``) is a unit or keyword (``LIMIT ALL``), not a
#: name.
VAR_PARENTS = _classes("Extract", "Interval", "TimestampTrunc", "DateTrunc", "Trim", "Limit")
