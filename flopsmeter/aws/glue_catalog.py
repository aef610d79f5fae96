"""Where the Glue catalog points the compacted table's partitions (what Athena reads for each).

The compaction function reads the locations of the partitions it is about to leave alone (``locations``: one
``BatchGetPartition`` per 1 000), so a partition whose manifest was written but whose ``ALTER TABLE`` never ran
(a crash between the steps) is pointed at its newest generation on the next run. ``verify --database`` reads
every partition the catalog serves (``served``: ``GetPartitions``, every page) and compares each with its
manifest. Partition values are the table's keys in order: account, region, date. Failures come back as
``CatalogError`` (``flopsmeter.errors``), transient or permanent by ``flopsmeter.aws.errors``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flopsmeter.aws.errors import translate
from flopsmeter.errors import PermanentCatalogError, TransientCatalogError

BATCH_GET_LIMIT = 1000  # BatchGetPartition: at most 1 000 partitions per request
PartitionValues = tuple[str, str, str]  # (account, region, date as YYYY-MM-DD): the table's partition keys in order


@dataclass(frozen=True)
class GlueCatalog:
    """The compacted table of one Glue database."""

    glue: Any
    database: str
    table: str = "records_compacted"

    @property
    def name(self) -> str:
        return f"{self.database}.{self.table}"

    def locations(self, partitions: Iterable[PartitionValues]) -> dict[PartitionValues, str]:
        """The location of each of ``partitions`` the catalog has (absent: not registered)."""
        wanted = sorted(set(partitions))
        found: dict[PartitionValues, str] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            chunk = wanted[start : start + BATCH_GET_LIMIT]
            reply = self._call(
                "batch_get_partition",
                DatabaseName=self.database,
                TableName=self.table,
                PartitionsToGet=[{"Values": list(values)} for values in chunk],
            )
            if reply.get("UnprocessedKeys"):
                raise TransientCatalogError(
                    f"Glue BatchGetPartition left {len(reply['UnprocessedKeys'])} partition(s) of {self.name} unread"
                )
            found.update(_located(reply.get("Partitions", [])))
        return found

    def served(self) -> dict[PartitionValues, str]:
        """Every partition of the table and its location."""
        found: dict[PartitionValues, str] = {}
        kwargs: dict[str, Any] = {"DatabaseName": self.database, "TableName": self.table}
        while True:
            page = self._call("get_partitions", **kwargs)
            found.update(_located(page.get("Partitions", [])))
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(getattr(self.glue, operation)(**kwargs))
        except (ClientError, BotoCoreError) as err:
            raise translate(
                err,
                f"Glue {operation} on {self.name}",
                transient=TransientCatalogError,
                permanent=PermanentCatalogError,
            ) from err


def _located(partitions: Iterable[dict[str, Any]]) -> dict[PartitionValues, str]:
    found: dict[PartitionValues, str] = {}
    for item in partitions:
        values = tuple(str(v) for v in item.get("Values") or [])
        if len(values) == 3:
            found[(values[0], values[1], values[2])] = str(item.get("StorageDescriptor", {}).get("Location", ""))
    return found
