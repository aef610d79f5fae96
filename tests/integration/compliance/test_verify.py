"""verify against the bucket (moto: Object Lock bucket + KMS RSA key; LastModified on an emulated clock).

Object Lock protects versions, not keys: tampering here means writing a new version or a delete marker, which
S3 allows, and which verify must catch. Each test tampers in one way and checks the precise finding.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from moto import mock_aws

from flopsmeter.audit.record import canonical_json
from flopsmeter.cli.main import main
from flopsmeter.compliance.verify import BucketSource, render_text, verify
from tests.support.trail import BUCKET, T0, Trail, build_trail, make_signing_key, tamper_digest

AUDIT_DOC = (Path(__file__).resolve().parents[3] / "docs" / "audit.md").read_text(encoding="utf-8")


@pytest.fixture
def trail(monkeypatch):
    with mock_aws():
        yield build_trail(monkeypatch)


def run(trail: Trail, **kwargs):
    return verify(BucketSource(trail.store, kms=trail.kms, now=trail.clock.now), **kwargs)


def problems(report) -> set[tuple[str, str]]:
    return {(f.object, f.problem) for f in report.failures}


def test_untouched_trail_is_unverified_while_a_record_awaits_its_digest_then_ok(trail):
    report = run(trail)
    assert not report.failures, render_text(report)
    assert report.records_checked == 6 and report.records_covered == 5 and report.digests_checked == 3
    assert report.not_yet_covered == [trail.key("job-f")]
    assert report.verdict == "UNVERIFIED" and not report.ok  # never OK without a digest that lists it
    text = render_text(report)
    assert "Result: UNVERIFIED (1 record(s) not covered by a signed digest; nothing failed)" in text
    shown = AUDIT_DOC.split("(six\nrecords, hourly digests to 12:00, one record written at 12:20):\n\n```\n")[1].split(
        "```"
    )[0]
    assert text.endswith(shown.rstrip("\n")), "docs/audit.md's verify output drifted from what verify prints"
    trail.digest(T0 + timedelta(hours=3), T0 + timedelta(hours=4, minutes=5))
    covered = run(trail)
    assert covered.ok and covered.records_covered == 6, render_text(covered)
    assert render_text(covered).endswith("Result: OK")


def test_a_write_landing_after_its_hours_digest_listed_the_bucket_is_covered_by_the_next(trail):
    # digest of hour 12 lists the bucket at 13:02; a write stamped 12:59:58 lands after that listing
    trail.digest(T0 + timedelta(hours=3), T0 + timedelta(hours=4, minutes=2))
    edge = trail.write("job-edge", T0 + timedelta(hours=3, minutes=59, seconds=58))
    trail.clock.set(T0 + timedelta(hours=4, minutes=10))
    pending = run(trail)
    assert not pending.failures, render_text(pending)  # not an extra record: it may have landed late
    assert pending.not_yet_covered == [edge] and pending.verdict == "UNVERIFIED"
    [written] = trail.digest(T0 + timedelta(hours=4), T0 + timedelta(hours=5, minutes=5))
    entry = next(e for e in json.loads(trail.store.get(written).body)["records"] if e["key"] == edge)
    assert entry["last_modified"] == "2026-01-05T12:59:58Z"  # before the digest's period: listed as landed late
    covered = run(trail)
    assert covered.ok and covered.not_yet_covered == [], render_text(covered)
    assert trail.digest(T0 + timedelta(hours=5), T0 + timedelta(hours=6, minutes=5))  # listed once, not again
    assert edge not in trail.store.get(trail.digests[-1]).body.decode()


def test_an_empty_bucket_is_unverified_not_ok(trail, capsys, monkeypatch):
    empty = "flopsmeter-audit-empty"
    trail.s3.create_bucket(Bucket=empty, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setattr("flopsmeter.cli.audit.utcnow", lambda: trail.clock.now)
    assert main(["verify", "--bucket", empty]) == 3
    text = capsys.readouterr().out
    assert "Result: UNVERIFIED (nothing to verify: no record and no digest)" in text and "Result: OK" not in text


def test_digests_chain_and_cover_every_record_once(trail):
    docs = [json.loads(trail.store.get(k).body) for k in trail.digests]
    assert docs[0]["previous_digest"] is None and docs[0]["chain_note"] == "first digest of this chain"
    assert [d["record_count"] for d in docs] == [3, 2, 0]  # the empty hour still gets a digest
    assert docs[1]["previous_digest"]["key"] == trail.digests[0]
    assert docs[2]["period_start"] == docs[1]["period_end"] == "2026-01-05T11:00:00Z"


def test_rerunning_the_digest_for_a_closed_hour_is_a_no_op(trail):
    assert trail.digest(T0 + timedelta(hours=2), T0 + timedelta(hours=3, minutes=40)) == []
    assert len(list(trail.store.list_versions("digests/v1/account="))) == 3


def test_altered_record_body_is_caught(trail):
    key = trail.key("job-b")
    document = json.loads(trail.store.get(key).body)
    document["flops"]["classified_flops"] = 1.0e20  # looks harmless now
    trail.clock.set(T0 + timedelta(hours=3, minutes=25))
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=canonical_json(document))
    report = run(trail)
    assert (key, "record_altered") in problems(report)
    assert (key, "record_overwritten") in problems(report)
    assert not report.ok


def test_resealed_record_is_caught_by_the_digest(trail):
    from flopsmeter.audit.record import AuditRecord

    key = trail.key("job-b")
    record = AuditRecord.model_validate_json(trail.store.get(key).body)
    forged = record.model_copy(update={"outcome": "below", "sha256": ""}).sealed()  # self-consistent forgery
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=forged.to_json_bytes())
    finding = next(f for f in run(trail).failures if f.problem == "record_resealed")
    assert finding.object == key and record.sha256[:16] in finding.detail


def test_altered_sha256_field_is_caught(trail):
    key = trail.key("job-a")
    document = json.loads(trail.store.get(key).body)
    document["sha256"] = "0" * 64
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=canonical_json(document))
    assert (key, "record_sha256_altered") in problems(run(trail))


def test_deleted_record_is_caught(trail):
    key = trail.key("job-d")
    trail.s3.delete_object(Bucket=BUCKET, Key=key)  # a delete marker; the locked version stays
    finding = next(f for f in run(trail).failures if f.object == key)
    assert finding.problem == "record_deleted" and "locked version(s) still present" in finding.detail


def test_extra_record_in_a_covered_hour_is_caught(trail):
    key = trail.write("job-x", T0 + timedelta(hours=1, minutes=50))  # back-dated into the digested hour 10
    report = run(trail)
    finding = next(f for f in report.failures if f.object == key)
    assert finding.problem == "not_in_digest" and "extra record" in finding.detail


def test_record_written_after_the_last_digest_is_not_a_failure_but_its_hash_is_checked(trail):
    key = trail.key("job-f")
    assert not run(trail).failures
    document = json.loads(trail.store.get(key).body)
    document["flops"]["classified_flops"] = 1.0
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=canonical_json(document))
    assert (key, "record_altered") in problems(run(trail))


def test_altered_digest_entry_is_caught(trail):
    key = trail.digests[0]
    tamper_digest(trail, key, lambda d: d["records"][0].update(object_sha256="f" * 64))
    assert {(key, "digest_altered"), (key, "digest_overwritten")} <= problems(run(trail))


def test_reordered_digest_entries_are_caught(trail):
    key = trail.digests[0]
    tamper_digest(trail, key, lambda d: d["records"].reverse())
    assert {(key, "digest_entries_reordered"), (key, "digest_altered")} <= problems(run(trail))


def test_removed_digest_entry_is_caught_even_when_re_signed_by_an_insider(trail):
    key, record_key = trail.digests[1], trail.key("job-d")

    def drop(document):
        document["records"] = [e for e in document["records"] if e["key"] != record_key]
        document["record_count"] = len(document["records"])

    tamper_digest(trail, key, drop, resign=True)  # valid signature: only the chain can tell
    found = problems(run(trail))
    assert (key, "chain_broken") in found  # digest 11 chained to the original bytes of digest 10
    assert (record_key, "not_in_digest") in found
    assert (key, "bad_signature") not in found


def test_bad_signature_is_caught(trail):
    key = trail.digests[2]
    other = make_signing_key(trail.kms)
    forged = trail.kms.sign(KeyId=other, Message=b"x", MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256")

    def swap(document):
        document["signature"]["value"] = base64.b64encode(forged["Signature"]).decode()

    tamper_digest(trail, key, swap)
    assert (key, "bad_signature") in problems(run(trail))


def test_digest_signed_by_another_key_is_caught(trail):
    import boto3

    from flopsmeter.audit.digests import digest_body, public_key_fingerprint, signing_string
    from flopsmeter.audit.record import body_sha256
    from flopsmeter.aws.kms import KmsSigner

    key = trail.digests[2]
    other = KmsSigner(boto3.client("kms", region_name="eu-west-1"), make_signing_key(trail.kms))

    def resign_with_other(document):
        body_hash = body_sha256(digest_body(document))
        document["signature"].update(
            key_id=other.key_arn,
            public_key_sha256=public_key_fingerprint(other.public_key_der()),
            value=base64.b64encode(other.sign(signing_string(key, document["period_end"], body_hash))).decode(),
        )

    tamper_digest(trail, key, resign_with_other)
    assert (key, "signing_key_changed") in problems(run(trail))


def test_deleted_digest_is_caught(trail):
    key = trail.digests[1]
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    found = problems(run(trail))
    assert (key, "digest_deleted") in found
    assert (key, "digest_missing") in found  # named as previous by the next digest


def test_deleted_newest_digest_is_caught(trail):
    key = trail.digests[-1]
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    assert (key, "digest_deleted") in problems(run(trail))


def test_stopped_digest_function_is_reported_as_overdue(trail):
    trail.clock.set(T0 + timedelta(hours=6))
    report = run(trail)
    assert [f.problem for f in report.failures] == ["digest_overdue"]


def test_period_filter_checks_only_that_period(trail):
    key = trail.key("job-a")
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    later = run(trail, start=T0 + timedelta(hours=1), end=T0 + timedelta(hours=3))
    assert later.ok and later.records_checked == 2
    assert not run(trail, start=T0, end=T0 + timedelta(hours=1)).ok


def test_cli_verify_exits_3_while_unverified_0_when_ok_and_1_naming_the_object_when_failed(trail, capsys, monkeypatch):
    monkeypatch.setattr("flopsmeter.cli.audit.utcnow", lambda: trail.clock.now)
    assert main(["verify", "--bucket", BUCKET]) == 3  # job-f is in no digest yet
    assert "Result: OK" not in capsys.readouterr().out
    trail.digest(T0 + timedelta(hours=3), T0 + timedelta(hours=4, minutes=5))
    assert main(["verify", "--bucket", BUCKET]) == 0
    assert capsys.readouterr().out.endswith("Result: OK\n")
    key = trail.key("job-c")
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    assert main(["verify", "--bucket", BUCKET, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False
    assert {"object": key, "problem": "record_deleted"}.items() <= document["failures"][0].items()
    assert main(["verify", "--bucket", BUCKET]) == 1
    text = capsys.readouterr().out
    assert f"FAIL {key}: record_deleted" in text and "Result: FAILED" in text


def _cluster_day(trail: Trail, at) -> str:  # type: ignore[no-untyped-def]
    """A HyperPod cluster's day (its ceiling against its reported jobs), written as the service writes it."""
    from flopsmeter.audit.cluster_record import ClusterPeriodRecord, JobShare
    from flopsmeter.audit.keys import cluster_period_key
    from tests.support.trail import ACCOUNT, REGION

    trail.clock.set(at)
    start = T0.replace(hour=0, minute=0) - timedelta(days=1)
    record = ClusterPeriodRecord(
        recorded_at=at, account_id=ACCOUNT, region=REGION, cluster_name="research",
        cluster_arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:cluster/abc123", orchestrator="slurm",
        period_start=start, period_end=start + timedelta(days=1), ceiling_flops=4e21, instance_hours=48,
        reported_flops=1e21, unreported_flops=3e21, coverage=0.25, status="gap",
        jobs=[JobShare(job_id="4242", flops=1e21)],
    ).sealed()  # fmt: skip
    key = cluster_period_key(ACCOUNT, REGION, start.date(), "research")
    assert trail.store.put_immutable(key, record.to_json_bytes())[0]
    return key


def test_a_hyperpod_clusters_day_is_sealed_by_the_digest_and_a_forged_gap_is_caught(trail):
    key = _cluster_day(trail, T0 + timedelta(hours=3, minutes=25))  # in hour 12, after job-f
    pending = run(trail)
    assert key in pending.not_yet_covered and pending.verdict == "UNVERIFIED", render_text(pending)
    [written] = trail.digest(T0 + timedelta(hours=3), T0 + timedelta(hours=4, minutes=5))
    assert key in {e["key"] for e in json.loads(trail.store.get(written).body)["records"]}
    assert run(trail).ok

    document = json.loads(trail.store.get(key).body)
    document.update(unreported_flops=0.0, coverage=1.0, status="covered")  # hide the gap
    trail.clock.set(T0 + timedelta(hours=4, minutes=20))
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=canonical_json(document))
    report = run(trail)
    assert {(key, "record_altered"), (key, "record_overwritten")} <= problems(report) and not report.ok


def test_a_mirror_carries_the_clusters_days_and_misses_a_removed_one(trail, tmp_path):
    from flopsmeter.compliance.mirror import pull
    from flopsmeter.compliance.verify import DirSource

    key = _cluster_day(trail, T0 + timedelta(hours=3, minutes=25))
    trail.digest(T0 + timedelta(hours=3), T0 + timedelta(hours=4, minutes=5))
    pull(trail.store, tmp_path, now=trail.clock.now)
    assert (tmp_path / key).is_file()
    assert verify(DirSource(tmp_path)).verdict != "FAILED"

    (tmp_path / key).unlink()
    report = verify(DirSource(tmp_path))
    assert (key, "record_missing") in problems(report) and report.verdict == "FAILED"
