"""The catalog against the manifests: each compacted partition Athena serves is the generation its newest manifest
names.

A partition the catalog points at an older generation (a compaction stopped between its manifest and ``ALTER
TABLE``) makes ``query --compacted`` miss the records added since: a failure, with the count. A location that is
no generation of a manifested partition is a failure too. A manifested partition the catalog does not serve is
listed, not failed: queries read its JSON records (the next compaction run registers it). A mirror has no catalog,
and the bucket's is read only when verify is given one (``--database``): the report says which.
"""

from __future__ import annotations

import json

from flopsmeter.audit.keys import parse_compaction_data_key
from flopsmeter.compliance.layout import Partition
from flopsmeter.compliance.verify.findings import VerifyReport
from flopsmeter.compliance.verify.sources import Source

Newest = dict[Partition, tuple[int, str]]  # partition -> (generation, manifest key) of its newest manifest


def check_catalog(source: Source, report: VerifyReport, newest: Newest) -> None:
    served, how = source.served_partitions()
    if served is None:
        if newest:
            report.catalog_not_checked = how
        return
    report.note(f"catalog: {how}")
    by_values = {(p.account, p.region, p.day.isoformat()): p for p in newest}
    for values, location in sorted(served.items()):
        partition = by_values.get(values)
        if partition is None:
            report.fail(
                "account={}/region={}/date={}".format(*values),
                "catalog_unknown_partition",
                f"the catalog serves {location}, but no compaction manifest exists for this partition",
            )
            continue
        generation, key = newest[partition]
        expected = source.location_of(partition.data_prefix(generation))
        if location.rstrip("/") != expected.rstrip("/"):
            report.fail(key, "catalog_stale", _stale_detail(source, partition, generation, location, expected))
    report.catalog_not_registered = sorted(p.path for values, p in by_values.items() if values not in served)
    report.catalog_partitions_checked = len(served)


def _stale_detail(source: Source, partition: Partition, generation: int, location: str, expected: str) -> str:
    detail = f"the catalog serves {location}, not generation {generation} ({expected}) this manifest names"
    served_generation = _generation_of(source, location)
    if served_generation is None or served_generation == generation:
        return detail + ": not a generation of this partition"
    missing = _records_of(source, partition, generation) - _records_of(source, partition, served_generation)
    return detail + f": query --compacted misses {len(missing)} record(s) of generation {generation}"


def _generation_of(source: Source, location: str) -> int | None:
    """The generation a served location names (None: not a compacted data prefix of this bucket)."""
    prefix = location.removeprefix(source.location_of(""))
    try:
        return parse_compaction_data_key(prefix.rstrip("/") + "/x")[3]
    except ValueError:
        return None


def _records_of(source: Source, partition: Partition, generation: int) -> set[str]:
    body = source.read(partition.manifest_key(generation))
    try:
        return {str(key) for key, _sha in json.loads(body or b"{}").get("records", [])}
    except (ValueError, TypeError, AttributeError):
        return set()
