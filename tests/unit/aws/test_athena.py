"""The Athena runner: the SQL goes out as given, results come back over every page, failures say why."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from flopsmeter.aws.athena import AthenaTarget, Polling
from flopsmeter.compliance.query import Preset, preset_sql, run_athena
from flopsmeter.errors import AthenaError
from tests.support.athena_sql import parse_what_it_sends


def test_athena_path_sends_the_same_sql_and_pages_results():
    athena = boto3.client("athena", region_name="eu-west-1")
    sql = preset_sql(Preset(exceeding=True))
    sent = parse_what_it_sends(athena)  # Athena's grammar first
    stub = Stubber(athena)
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {"QueryString": sql, "WorkGroup": "flopsmeter", "QueryExecutionContext": {"Database": "flopsmeter_audit"}},
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}}, {"QueryExecutionId": "q-1"}
    )
    stub.add_response(
        "get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}, {"QueryExecutionId": "q-1"}
    )
    meta = {"ColumnInfo": [{"Name": "job", "Type": "varchar"}, {"Name": "flops", "Type": "double"}]}
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "ResultSetMetadata": meta,
                "Rows": [
                    {"Data": [{"VarCharValue": "job"}, {"VarCharValue": "flops"}]},
                    {"Data": [{"VarCharValue": "over-1"}, {"VarCharValue": "5.0E22"}]},
                ],
            },
            "NextToken": "t2",
        },
        {"QueryExecutionId": "q-1"},
    )
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "ResultSetMetadata": meta,
                "Rows": [{"Data": [{"VarCharValue": "over-2"}, {"VarCharValue": "9.0E23"}]}],
            }
        },
        {"QueryExecutionId": "q-1", "NextToken": "t2"},
    )
    sleeps = []
    with stub:
        result = run_athena(athena, sql, AthenaTarget("flopsmeter", "flopsmeter_audit"), Polling(sleep=sleeps.append))
    stub.assert_no_pending_responses()
    assert result.columns == ["job", "flops"] and result.rows == [("over-1", "5.0E22"), ("over-2", "9.0E23")]
    assert sleeps == [1.0] and sent == [sql]


def test_athena_failure_is_reported_with_its_reason():
    athena = boto3.client("athena", region_name="eu-west-1")
    stub = Stubber(athena)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "COLUMN_NOT_FOUND: line 1:8"}}},
    )
    with stub, pytest.raises(AthenaError, match="COLUMN_NOT_FOUND"):
        run_athena(athena, "SELECT nope FROM records", AthenaTarget("w", "d"), Polling(sleep=lambda s: None))


def test_a_query_still_running_after_the_timeout_is_an_error_not_a_wait_forever():
    athena = boto3.client("athena", region_name="eu-west-1")
    stub = Stubber(athena)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-3"})
    for _ in range(3):
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}})
    with stub, pytest.raises(AthenaError, match="still RUNNING after 2 s"):
        run_athena(
            athena,
            "SELECT 1",
            AthenaTarget("w", "d"),
            Polling(every_seconds=1, timeout_seconds=2, sleep=lambda s: None),
        )
