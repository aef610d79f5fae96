"""``flopsmeter query`` as one use case: a ``QueryRequest`` in, a ``QueryAnswer`` out (``run``).

The request says what to ask (SQL or a preset), of which records (the bucket through a local mirror, a directory,
or the Glue table through Athena), and for which accounts; ``run`` checks the options go together, resolves the
accounts, pulls the mirror when asked, runs the SQL and adds what the engine cannot (days left on a deadline).
Notes for the person (what a pull did, the SQL with ``show_sql``) go to ``notify`` as they happen, so they are
seen even when the query then fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from flopsmeter.compliance.accounts import AccountSelection
from flopsmeter.compliance.errors import InvalidRequest
from flopsmeter.compliance.query.presets import Preset, preset_sql
from flopsmeter.compliance.query.render import Result
from flopsmeter.compliance.source import Aws, TrailSource, local_trail, pull_note

if TYPE_CHECKING:
    from flopsmeter.domain.thresholds import ThresholdPolicy

PRESET_FLAGS = (
    "--exceeding, --job, --since, --until, --by-base-model, --by-principal, --by-package-group, --by-sweep, "
    "--deadlines, --by-lineage, --account, --ou"
)


@dataclass(frozen=True)
class AthenaOptions:
    """Where Athena runs the query (stack outputs), and whether presets read compacted days from Parquet."""

    workgroup: str | None = None
    database: str | None = None
    output_location: str | None = None
    compacted: bool = False


@dataclass(frozen=True)
class QueryRequest:
    sql: str | None = None  # the user's own SQL over ``records``; None: the preset
    preset: Preset = field(default_factory=Preset)  # ``accounts`` is filled from ``selection`` by ``run``
    selection: AccountSelection = field(default_factory=AccountSelection)
    source: TrailSource = field(default_factory=TrailSource)
    engine: Literal["duckdb", "athena"] = "duckdb"
    athena: AthenaOptions = field(default_factory=AthenaOptions)
    pull_only: bool = False  # with a bucket: refresh the local mirror and stop
    csv: bool = False  # the caller wants CSV: DuckDB writes it itself when every column is plain
    show_sql: bool = False
    now: datetime | None = None  # the clock ``--deadlines`` counts days left against
    reevaluate_policy: ThresholdPolicy | None = None  # --deadlines: add the clocks a re-evaluation opens (issue 23)


@dataclass(frozen=True)
class QueryAnswer:
    result: Result | None = None  # None: ``pull_only``, or ``csv_text`` holds the answer
    csv_text: str | None = None
    root: Path | None = None  # the local directory read (DuckDB)


def run(request: QueryRequest, aws: Aws, notify: Callable[[str], None] = lambda _note: None) -> QueryAnswer:
    """Run the query the request describes (module docstring)."""
    accounts = request.selection.resolve(aws)
    preset = replace(request.preset, accounts=tuple(sorted(accounts or ())))
    _check(request, preset, accounts is not None)
    if request.engine == "athena":
        return QueryAnswer(_with_days_left(request, _athena(request, preset, aws, notify)))
    sql = request.sql or preset_sql(preset)
    if request.show_sql:
        notify(sql)
    trail = local_trail(request.source, aws, pull=request.source.bucket is not None)
    note = pull_note(request.source, trail)
    if note:
        notify(note)
    if request.pull_only:
        return QueryAnswer(root=trail.root)
    from flopsmeter.compliance.query.cache import run_duckdb, run_duckdb_csv

    if request.csv and not preset.deadlines:
        text = run_duckdb_csv(trail.root, sql)
        if text is not None:
            return QueryAnswer(csv_text=text, root=trail.root)
    result = _with_reevaluation(request, trail.root, run_duckdb(trail.root, sql))
    return QueryAnswer(_with_days_left(request, result), root=trail.root)


def _with_reevaluation(request: QueryRequest, root: Path, result: Result) -> Result:
    policy = request.reevaluate_policy
    if policy is None or not request.preset.deadlines:
        return result
    from flopsmeter.compliance.query.deadlines import with_reevaluated_clocks
    from flopsmeter.compliance.reevaluate import read_dir, reevaluate, reevaluation_clocks

    clocks = reevaluation_clocks(reevaluate(read_dir(root), policy))
    return with_reevaluated_clocks(result, clocks, policy.policy_id)


def _check(request: QueryRequest, preset: Preset, filtered: bool) -> None:
    """Options that do not go together, as one line each (InvalidRequest)."""
    p = preset
    listing = (p.exceeding, p.job, p.since, p.until, p.by_base_model, p.by_principal)
    if request.sql and any((*listing, p.by_package_group, p.by_sweep, p.deadlines, p.by_lineage, filtered)):
        raise InvalidRequest(f"give either SQL or preset options ({PRESET_FLAGS}), not both")
    if (p.deadlines or p.by_lineage) and (p.exceeding or p.job or p.since or p.by_base_model):
        raise InvalidRequest(
            "--deadlines and --by-lineage stand alone (no --exceeding, --job, --since, --by-base-model)"
        )
    if (p.deadlines or p.by_lineage) and filtered:
        raise InvalidRequest("--deadlines and --by-lineage cover every account (no --account / --ou)")
    if request.athena.compacted and (request.engine != "athena" or request.sql):
        raise InvalidRequest(
            "--compacted is for the presets on Athena (locally the cache reads compacted files already; in your own "
            "SQL read records_compacted)"
        )
    if request.reevaluate_policy is not None and (not p.deadlines or request.engine != "duckdb"):
        raise InvalidRequest("--policy / --policy-file go with --deadlines on the local engine (duckdb)")
    if p.limit is not None and p.limit < 1:
        raise InvalidRequest(f"--limit must be a whole number >= 1, got {p.limit}")


def _athena(request: QueryRequest, preset: Preset, aws: Aws, notify: Callable[[str], None]) -> Result:
    """The query on Athena; with ``compacted`` the preset reads the compacted partitions from Parquet and the others
    from JSON (``flopsmeter.compliance.query.compacted``)."""
    from flopsmeter.aws.athena import AthenaTarget
    from flopsmeter.compliance.query.athena import run_athena

    options = request.athena
    if not (options.workgroup and options.database):
        raise InvalidRequest("--engine athena needs --workgroup and --database (stack outputs)")
    target = AthenaTarget(options.workgroup, options.database, options.output_location)
    athena = aws("athena")
    if options.compacted:
        from flopsmeter.compliance.query.compacted import COMBINED, compacted_cte, partitions_sql

        listed = run_athena(athena, partitions_sql(), target)
        sql = compacted_cte(listed.rows) + preset_sql(preset, table=COMBINED, engine="athena")
    else:
        sql = request.sql or preset_sql(preset, engine="athena")
    if request.show_sql:
        notify(sql)
    return run_athena(athena, sql, target)


def _with_days_left(request: QueryRequest, result: Result) -> Result:
    if not request.preset.deadlines:
        return result
    from flopsmeter.compliance.query.deadlines import with_days_left

    return with_days_left(result, request.now or datetime.now(UTC))
