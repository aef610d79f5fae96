"""Athena's grammar for the tests: every statement the code sends to Athena is parsed here before it is answered.

Athena runs DDL on Hive and DML on Trino, with different quoting (docs.aws.amazon.com/athena/latest/ug/
reserved-words.html): DDL escapes identifiers with backticks (double quotes make a string literal) and reserves
the words in ``DDL_RESERVED`` (``date`` among them); DML escapes with double quotes. ``parse_athena`` parses DDL
with sqlglot's Hive dialect and DML with its Trino dialect, and adds the two rules sqlglot's Hive dialect lets
pass: no double-quoted name and no unescaped reserved word. ``UNLOAD`` is Athena's own statement (``UNLOAD
(SELECT …) TO 's3://…' WITH (property = value, …)``): its frame is checked token by token and its query parsed as
Trino. What sqlglot does not parse, or parses only as an opaque command, is refused.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

# Athena's "Reserved keywords to escape in DDL statements" (as listed; CASHE and the rest spelled as AWS spells them)
DDL_RESERVED = frozenset(
    [
        "ALL",
        "ALTER",
        "AND",
        "ARRAY",
        "AS",
        "AUTHORIZATION",
        "BETWEEN",
        "BIGINT",
        "BINARY",
        "BOOLEAN",
        "BOTH",
        "BY",
        "CASE",
        "CASHE",
        "CAST",
        "CHAR",
        "COLUMN",
        "CONF",
        "CONSTRAINT",
        "COMMIT",
        "CREATE",
        "CROSS",
        "CUBE",
        "CURRENT",
        "CURRENT_DATE",
        "CURRENT_TIMESTAMP",
        "CURSOR",
        "DATABASE",
        "DATE",
        "DAYOFWEEK",
        "DECIMAL",
        "DELETE",
        "DESCRIBE",
        "DISTINCT",
        "DIV",
        "DOUBLE",
        "DROP",
        "ELSE",
        "END",
        "EXCHANGE",
        "EXISTS",
        "EXTENDED",
        "EXTERNAL",
        "EXTRACT",
        "FALSE",
        "FETCH",
        "FLOAT",
        "FLOOR",
        "FOLLOWING",
        "FOR",
        "FOREIGN",
        "FROM",
        "FULL",
        "FUNCTION",
        "GRANT",
        "GROUP",
        "GROUPING",
        "HAVING",
        "IF",
        "IMPORT",
        "IN",
        "INNER",
        "INSERT",
        "INT",
        "INTEGER",
        "INTERSECT",
        "INTERVAL",
        "INTO",
        "IS",
        "JOIN",
        "LATERAL",
        "LEFT",
        "LESS",
        "LIKE",
        "LOCAL",
        "MACRO",
        "MAP",
        "MORE",
        "NONE",
        "NOT",
        "NULL",
        "NUMERIC",
        "OF",
        "ON",
        "ONLY",
        "OR",
        "ORDER",
        "OUT",
        "OUTER",
        "OVER",
        "PARTIALSCAN",
        "PARTITION",
        "PERCENT",
        "PRECEDING",
        "PRECISION",
        "PRESERVE",
        "PRIMARY",
        "PROCEDURE",
        "RANGE",
        "READS",
        "REDUCE",
        "REGEXP",
        "REFERENCES",
        "REVOKE",
        "RIGHT",
        "RLIKE",
        "ROLLBACK",
        "ROLLUP",
        "ROW",
        "ROWS",
        "SELECT",
        "SET",
        "SMALLINT",
        "START",
        "TABLE",
        "TABLESAMPLE",
        "THEN",
        "TIME",
        "TIMESTAMP",
        "TO",
        "TRANSFORM",
        "TRIGGER",
        "TRUE",
        "TRUNCATE",
        "UNBOUNDED",
        "UNION",
        "UNIQUEJOIN",
        "UPDATE",
        "USER",
        "USING",
        "UTC_TIMESTAMP",
        "VALUES",
        "VARCHAR",
        "VIEWS",
        "WHEN",
        "WHERE",
        "WINDOW",
        "WITH",
    ]
)
DDL_VERBS = frozenset({"ALTER", "CREATE", "DROP", "MSCK", "SHOW", "DESCRIBE"})
DML_VERBS = frozenset({"SELECT", "WITH", "INSERT"})
UNLOAD_PROPERTIES = frozenset({"format", "compression", "compression_level", "field_delimiter", "partitioned_by"})


class AthenaSyntaxError(AssertionError):
    """A statement Athena would refuse (raised by the tests' Athena stand-ins: the test fails with the reason)."""


def parse_athena(sql: str) -> exp.Expression:
    """The statement's syntax tree, by Athena's grammar for its kind (DDL: Hive, DML: Trino, UNLOAD: Athena's)."""
    verb = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if verb in DDL_VERBS:
        return _parse_ddl(sql)
    if verb == "UNLOAD":
        return _parse_unload(sql)
    if verb in DML_VERBS:
        return _parse(sql, "trino")
    raise AthenaSyntaxError(f"not a statement Athena runs: {sql[:120]!r}")


def _parse(sql: str, dialect: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(sql, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    except (ParseError, TokenError) as err:
        raise AthenaSyntaxError(f"{dialect} does not parse it: {str(err)[:300]}\n{sql[:400]}") from None
    if len(statements) != 1 or statements[0] is None:
        raise AthenaSyntaxError(f"Athena runs one statement per query, got {len(statements)}: {sql[:200]!r}")
    tree = statements[0]
    if isinstance(tree, exp.Command):
        raise AthenaSyntaxError(f"{dialect} parses it only as an opaque command (unknown syntax): {sql[:200]!r}")
    return tree


def _parse_ddl(sql: str) -> exp.Expression:
    tokens = _tokens(sql, "hive")
    for token in tokens:
        if token.token_type == TokenType.STRING and sql[token.start] == '"':
            raise AthenaSyntaxError(
                f'DDL escapes names with backticks; "{token.text}" is a string literal in Hive: {sql[:200]!r}'
            )
    tree = _parse(sql, "hive")
    for identifier in tree.find_all(exp.Identifier):
        if not identifier.quoted and identifier.name.upper() in DDL_RESERVED:
            raise AthenaSyntaxError(
                f"{identifier.name!r} is reserved in Athena DDL: escape it with backticks: {sql[:200]!r}"
            )
    return tree


def _parse_unload(sql: str) -> exp.Expression:
    return parse_unload(sql)[0]


def parse_unload(sql: str) -> tuple[exp.Query, str]:
    """``UNLOAD (query) TO 's3://…' WITH (name = 'value', …)``: the frame token by token, the query as Trino.
    Returns the query and the location."""
    tokens = _tokens(sql, "trino")
    if len(tokens) < 4 or tokens[0].text.upper() != "UNLOAD" or tokens[1].token_type != TokenType.L_PAREN:
        raise AthenaSyntaxError(f"UNLOAD wants a parenthesised query: {sql[:200]!r}")
    close = _matching_paren(tokens, 1)
    query = _parse(sql[tokens[2].start : tokens[close].start], "trino")
    if not isinstance(query, exp.Query):
        raise AthenaSyntaxError(f"UNLOAD unloads a query, not {type(query).__name__}")
    rest = tokens[close + 1 :]
    shape = [(t.token_type, t.text.upper() if t.token_type == TokenType.VAR else "") for t in rest[:4]]
    expected = [(TokenType.VAR, "TO"), (TokenType.STRING, ""), (TokenType.WITH, ""), (TokenType.L_PAREN, "")]
    if shape != expected or not rest[1].text.startswith("s3://"):
        raise AthenaSyntaxError(f"UNLOAD (…) must go on TO 's3://…' WITH (…): {sql[tokens[close].start :][:200]!r}")
    _check_properties(rest[4:], sql)
    return query, rest[1].text


def _check_properties(tokens: list[Token], sql: str) -> None:
    """``name = 'value' [, …] )`` and nothing after: Athena's documented UNLOAD properties."""
    index = 0
    while True:
        if len(tokens) < index + 4:
            raise AthenaSyntaxError(f"UNLOAD's WITH (…) is cut short: {sql[-200:]!r}")
        name, eq, value = tokens[index : index + 3]
        if eq.token_type != TokenType.EQ or value.token_type != TokenType.STRING:
            raise AthenaSyntaxError(f"UNLOAD property {name.text!r} wants = 'value': {sql[-200:]!r}")
        if name.text.lower() not in UNLOAD_PROPERTIES:
            raise AthenaSyntaxError(f"UNLOAD has no property {name.text!r} (Athena: {sorted(UNLOAD_PROPERTIES)})")
        index += 3
        if tokens[index].token_type == TokenType.COMMA:
            index += 1
            continue
        if tokens[index].token_type != TokenType.R_PAREN or index + 1 != len(tokens):
            raise AthenaSyntaxError(f"UNLOAD's WITH (…) must end the statement: {sql[-200:]!r}")
        return


def _matching_paren(tokens: list[Token], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        kind = tokens[index].token_type
        depth += 1 if kind == TokenType.L_PAREN else -1 if kind == TokenType.R_PAREN else 0
        if depth == 0:
            return index
    raise AthenaSyntaxError("unbalanced parentheses")


def _tokens(sql: str, dialect: str) -> list[Token]:
    try:
        return list(sqlglot.tokenize(sql, read=dialect))
    except TokenError as err:
        raise AthenaSyntaxError(f"{dialect} does not tokenize it: {err}\n{sql[:200]}") from None


def parse_what_it_sends(athena: Any) -> list[str]:
    """Parse every ``StartQueryExecution`` query an Athena client sends (a Stubber's or moto's) before it goes out;
    returns the list the statements are logged in."""
    sent: list[str] = []

    def check(params: dict[str, Any], **_kwargs: Any) -> None:
        parse_athena(params["QueryString"])
        sent.append(params["QueryString"])

    athena.meta.events.register("provide-client-params.athena.StartQueryExecution", check)
    return sent
