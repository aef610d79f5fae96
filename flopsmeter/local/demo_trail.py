"""The demo's audit-trail scenarios: the records and what the service did with each event, a signed digest and
its verification, and an attempt to delete or overwrite a record."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.local.demo_jobs import DECLARED_JOBS, LOST_JOB, METERED_JOB
from flopsmeter.local.demo_session import Demo, drain_inbox
from flopsmeter.local.runner import peek_dead_letters
from flopsmeter.local.show import dead_letters_table, records_table


def records(demo: Demo) -> list[Any]:
    demo.section("The audit trail")
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    stored = sorted(
        ((o["Key"], store.get_record(o["Key"])) for o in store.list_keys("records/")),
        key=lambda pair: pair[1].job.end_time,
    )
    records = [record for _key, record in stored]
    demo.out.print(
        records_table(records, title=f"Audit records in s3://{demo.resources.audit_bucket} (* = primary policy)")
    )
    demo.check("each record copy is saved under its own job's name", save_copies(demo, store, stored))
    for r in records:
        if r.warnings:
            demo.out.print(f"[dim]{r.job.name} warnings: {'; '.join(r.warnings)[:300]}[/]")
    dead_letters = peek_dead_letters(demo.resources)
    demo.out.print(dead_letters_table(dead_letters))  # reasons and deliveries from the messages' attributes
    alerts = drain_inbox(demo.aws("sqs"), demo.resources.alert_inbox_url)
    for body in alerts:
        message = json.loads(body)
        demo.out.print(f"[yellow]SNS alert[/]: {message.get('Subject')}")
    recorded = drain_inbox(demo.aws("sqs"), demo.resources.recorded_inbox_url)
    demo.out.print(f"EventBridge 'FLOPs Classification Recorded' events published: {len(recorded)}")
    by_name = {r.job.name: r for r in records}
    expected_jobs = {METERED_JOB, LOST_JOB.name, *(j.name for j in DECLARED_JOBS)}
    demo.check("one record per job", set(by_name) == expected_jobs and len(records) == len(expected_jobs))
    if demo.train:
        demo.check(
            "the tiny fine-tuning is classified on its metered FLOPs",
            by_name.get(METERED_JOB) is not None and by_name[METERED_JOB].flops.method == "metered",
        )
    demo.check("the big job exceeds", getattr(by_name.get("demo-big-exceeds"), "outcome", None) == "exceeds")
    demo.check(
        "the lineage child is classified on parent + own FLOPs",
        getattr(by_name.get("demo-dpo-stage2"), "lineage", None) is not None
        and by_name["demo-dpo-stage2"].lineage.cumulative_flops > by_name["demo-dpo-stage2"].lineage.own_flops,
    )
    demo.check(
        "a missing CloudTrail event is recorded as not_found with a reason",
        getattr(getattr(by_name.get("demo-failed-oom"), "cloudtrail", None), "status", None) == "not_found",
    )
    demo.check(
        "the malformed event is in the dead-letter queue after 1 delivery, with its reason",
        [(d["error"], d["deliveries"], bool(d["reason"])) for d in dead_letters] == [("MalformedEvent", 1, True)],
    )
    demo.check("alerts were sent for approaching/exceeds", len(alerts) >= 2)
    return records


def save_copies(demo: Demo, store: AuditStore, stored: list[tuple[str, AuditRecord]]) -> bool:
    """Copy each record's stored bytes to ``<out>/records/<job>.json``; True when every copy reads back as the
    record of the job its file is named after."""
    saved = demo.out_dir / "records"
    saved.mkdir(parents=True, exist_ok=True)
    for key, record in stored:
        (saved / f"{record.job.name}.json").write_bytes(store.get(key).body)
    demo.out.print(f"record JSON copies: {saved}/")
    copies = sorted(saved.glob("*.json"))
    names = {path.stem: json.loads(path.read_bytes()).get("job", {}).get("name") for path in copies}
    return len(copies) == len(stored) and all(stem == name for stem, name in names.items())


def digest_and_verify(demo: Demo) -> None:
    demo.section("Signed digest and verification")
    from flopsmeter.aws.kms import KmsSigner
    from flopsmeter.compliance.verify import BucketSource, render_text, verify
    from flopsmeter.service.digests import write_digest

    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    time.sleep(1.1)  # a digest covers versions written before its (whole-second) end: let the last one in
    for d in write_digest(store, KmsSigner(demo.aws("kms"), demo.resources.signing_key_id)):  # every chain
        demo.out.print(
            f"digest s3://{store.bucket}/{d.key}: {d.record_count} record version(s), "
            f"KMS-signed, sha256 {d.sha256[:16]}…"
        )
    source: Any = BucketSource(store, kms=demo.aws("kms"))
    report = verify(source)
    demo.out.print(render_text(report))
    demo.check("the trail verifies against its signed digest: every record covered (OK)", report.ok)
    from flopsmeter.audit.keys import CLUSTERS_PREFIX, SEALED_PREFIXES
    from flopsmeter.compliance.mirror import pull, read_manifest

    pulled = pull(store, demo.out_dir / "mirror")  # after the final digest, before the next step tampers
    pulled_keys = (read_manifest(demo.out_dir / "mirror") or {}).get("objects", {})
    records = sum(1 for key in pulled_keys if key.startswith(SEALED_PREFIXES))
    clusters = sum(1 for key in pulled_keys if key.startswith(CLUSTERS_PREFIX))
    demo.out.print(
        f"local mirror of the bucket with its digests: {demo.out_dir / 'mirror'} ({pulled.total} objects, "
        f"{records} of the bucket's {report.records_checked} records, {clusters} of them HyperPod cluster days)"
    )
    demo.check("the mirror holds every record, each covered by the final digest", records == report.records_checked)


def tamper(demo: Demo) -> None:
    demo.section("Deleting or overwriting a record")
    from botocore.exceptions import ClientError

    from flopsmeter.compliance.verify import BucketSource, render_text, verify

    s3, bucket = demo.aws("s3"), demo.resources.audit_bucket
    key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="records/")["Contents"]
        if o["Key"].endswith("/demo-big-exceeds.json")
    )
    version = s3.head_object(Bucket=bucket, Key=key)
    tries = (
        (
            "delete the locked version",
            lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"]),
        ),
        (
            "overwrite with If-None-Match (how records are written)",
            lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"{}", IfNoneMatch="*"),
        ),
    )
    attempt: Callable[[], Any]
    for label, attempt in tries:
        try:
            attempt()
        except ClientError as err:
            demo.out.print(f"[green]refused[/]: {label}: {err.response['Error']['Code']}")
            demo.check(f"refused: {label}", True)
        else:
            demo.out.print(f"[red]accepted[/]: {label}")
            demo.check(f"refused: {label}", False)
    # In AWS the stack's bucket policy denies a PutObject without If-None-Match (tests/infra prove the
    # statement); moto does not enforce bucket policies, so the emulator lets this one through.
    demo.out.print(
        "a plain PUT (no If-None-Match): the deployed bucket policy denies it; the emulator does not enforce "
        "bucket policies, so it goes through here"
    )
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"outcome": "below"}')
    kept = s3.head_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    demo.out.print(
        f"even so it only adds a new version: the original ({version['VersionId'][:8]}…) is still there, locked "
        f"until {kept['ObjectLockRetainUntilDate']:%Y-%m-%d} ({kept['ObjectLockMode']}); verify now reports it:"
    )
    source: Any = BucketSource(AuditStore(s3, bucket), kms=demo.aws("kms"))
    report = verify(source)
    demo.out.print(render_text(report))
    demo.out.print("[bold]verification detects the overwrite[/] (expected here: the demo tampered on purpose)")
    demo.check("verify detects the overwritten record (FAILED)", report.verdict == "FAILED")
