"""The bad-input corpus (tests/events/bad/) through SQS -> the real handler -> moto, with the logged outcome asserted.

* MANIFEST.json: SQS bodies. Malformed ones and events for jobs SageMaker does not know are sent to the DLQ by the
  handler on their first delivery, body unchanged, with the reason as message attributes and in a Powertools log
  line (never echoing the input); a readable event full of junk is classified normally and none of the junk
  reaches the record.
* job_settings.json: what a job carries (Environment, tags, CloudWatch metrics): injection attempts, 10 MB strings,
  NaN / 1e400 / negative FLOPs. Every job is still classified, on the conservative side, with a warning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flopsmeter import contract
from flopsmeter.functions.classifier import MAX_REASON
from tests.support.moto_world import state_change

BAD = Path(__file__).resolve().parents[1] / "events" / "bad"
MANIFEST: dict[str, dict[str, str]] = json.loads((BAD / "MANIFEST.json").read_text())["cases"]
JOB_CASES: dict[str, dict[str, Any]] = json.loads((BAD / "job_settings.json").read_text(encoding="utf-8"))["cases"]
LOG_MESSAGE = {
    "malformed": "malformed event; will end in the dead-letter queue",
    "job_not_found": "permanent failure; will end in the dead-letter queue",
}
AWS_POLICY_THRESHOLD_UNKNOWN = 3.3e22


def test_manifest_lists_every_corpus_file():
    on_disk = {p.name for p in BAD.iterdir()} - {"MANIFEST.json", "job_settings.json"}
    assert on_disk == set(MANIFEST)
    assert {c["outcome"] for c in MANIFEST.values()} <= {"malformed", "job_not_found", "recorded"}


def test_every_bad_event_is_dead_lettered_at_once_with_its_reason(harness):
    """All corpus bodies in one go (as a burst would bring them): each gets its own outcome, none blocks another."""
    harness.aws.job("llama3-8b-sft-001")  # the job the readable-but-junky events name
    sqs = harness["sqs"]
    sent: dict[str, str] = {}  # SQS message id -> corpus file
    for name in sorted(MANIFEST):
        body = (BAD / name).read_text(encoding="utf-8")
        sent[sqs.send_message(QueueUrl=harness.aws.classifier_queue, MessageBody=body or " ")["MessageId"]] = name
    responses = harness.drain(rounds=100)  # until empty

    assert all(r == {"batchItemFailures": []} for r in responses)  # nothing left to the redrive policy
    queue = sqs.get_queue_attributes(QueueUrl=harness.aws.classifier_queue, AttributeNames=["All"])["Attributes"]
    assert (queue["ApproximateNumberOfMessages"], queue["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    dead = {
        m["MessageAttributes"][contract.DLQ_ATTR_SOURCE_MESSAGE_ID]["StringValue"]: m
        for m in harness.dead_letter_messages()
    }
    expected_dead = {i for i, n in sent.items() if MANIFEST[n]["outcome"] != "recorded"}
    assert set(dead) == expected_dead
    problems = []
    for message_id, name in sent.items():
        case = MANIFEST[name]
        if case["outcome"] == "recorded":
            continue
        lines = [line for line in harness.log.lines if line.get("message_id") == message_id]
        reasons = [line for line in lines if line["message"] == LOG_MESSAGE[case["outcome"]]]
        if len(reasons) != 1:  # one delivery: dead-lettered by the handler at once
            problems.append(f"{name}: {len(reasons)} reason lines, want 1: {lines[:1]}")
            continue
        attributes = {k: v["StringValue"] for k, v in dead[message_id]["MessageAttributes"].items()}
        for reason in (reasons[0]["reason"], attributes[contract.DLQ_ATTR_REASON]):
            if case["reason_mentions"] not in reason or len(reason) > MAX_REASON:
                problems.append(f"{name}: reason {reason[:200]!r} lacks {case['reason_mentions']!r}")
        if attributes[contract.DLQ_ATTR_RECEIVE_COUNT] != "1":
            problems.append(f"{name}: dead-lettered on delivery {attributes[contract.DLQ_ATTR_RECEIVE_COUNT]}")
        if dead[message_id]["Body"] != ((BAD / name).read_text(encoding="utf-8") or " "):
            problems.append(f"{name}: the DLQ body is not the original")
        if any(len(json.dumps(line)) > 4 * MAX_REASON for line in lines):
            problems.append(f"{name}: a log line echoes the input")
        if sum(len(v) for v in attributes.values()) > 2 * MAX_REASON:
            problems.append(f"{name}: the DLQ attributes echo the input")
    assert problems == []
    records = harness.records()
    assert [r.job.name for r in records.values()] == ["llama3-8b-sft-001"]  # only the readable event recorded
    (record,) = records.values()
    assert "A" * 100 not in record.to_json_bytes().decode()  # the event's junk FailureReason is not copied
    assert harness.aws.metrics.counts["JobsClassified"] == 1


def _value(spec: Any, job: str) -> str:
    if isinstance(spec, dict):
        return str(spec["repeat"]) * int(spec["times"])
    return job if spec == "JOB" else str(spec)


def test_bad_job_settings_are_classified_conservatively_with_a_warning(harness):
    names = {}
    for i, (case, spec) in enumerate(sorted(JOB_CASES.items())):
        job = f"bad-settings-{i:02d}"
        names[job] = case
        harness.aws.job(
            job,
            environment={k: _value(v, job) for k, v in spec.get("environment", {}).items()},
            tags={k: _value(v, job) for k, v in spec.get("tags", {}).items()},
        )
        if "metered" in spec:
            harness.aws.meter(job, spec["metered"])
    harness.send(*(state_change(job) for job in names))
    harness.drain()

    records = {r.job.name: r for r in harness.records().values()}
    assert sorted(records) == sorted(names) and harness.dead_letters() == []  # every job classified, none dropped
    problems = []
    for job, case in names.items():
        record, expect = records[job], JOB_CASES[case]["expect"]
        primary = next(c for c in record.classifications if c.policy == record.primary_policy)
        got = {
            "threshold": primary.threshold,
            "pretrain_flops": record.base_model.pretrain_flops,
            "declared": record.flops.declared,
            "method": record.flops.method,
            "classified_flops": record.flops.classified_flops,
            "outcome": record.outcome,
        }
        wrong = {k: (got[k], v) for k, v in expect.items() if k != "warning" and got[k] != pytest.approx(v)}
        if wrong:
            problems.append(f"{case}: {wrong}")
        if not any(expect["warning"] in w for w in record.warnings):
            problems.append(f"{case}: no warning with {expect['warning']!r} in {record.warnings}")
        raw = record.base_model.raw_value or ""
        if len(raw) > 64 or any(not ch.isprintable() for ch in raw):
            problems.append(f"{case}: raw PRETRAIN_FLOPS stored unsafely: {raw[:80]!r}")
        if len(record.to_json_bytes()) > 64_000 or any(len(w) > 1_000 for w in record.warnings):
            problems.append(f"{case}: the record carries the input ({len(record.to_json_bytes())} bytes)")
    assert problems == []


# ---- the command line: bad input gets one line and a non-zero exit, never a traceback or a silent success ------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _cli_world(tmp: Path) -> dict[str, Path]:
    """A mirror, the same mirror with one record cut short, a flat folder with one cut short, folders that hold no
    records, and files that are no public key."""
    from tests.support.records import key_of, make_record, write_mirror

    records = [make_record(f"job-{i}") for i in range(3)]
    write_mirror(tmp / "mirror", records)
    write_mirror(tmp / "cut-mirror", records)
    _truncate(tmp / "cut-mirror" / key_of(records[0]))
    write_mirror(tmp / "damaged-mirror", records)  # braces intact, so only DuckDB's parser finds the damage
    damaged = tmp / "damaged-mirror" / key_of(records[1])
    damaged.write_bytes(damaged.read_bytes()[:150] + b"}")
    (tmp / "cut-flat").mkdir()
    for record in records:
        (tmp / "cut-flat" / f"{record.job.name}.json").write_bytes(record.to_json_bytes())
    _truncate(tmp / "cut-flat" / "job-0.json")
    (tmp / "empty").mkdir()
    (tmp / "not-records").mkdir()
    (tmp / "not-records" / "settings.json").write_text('{"theme": "dark"}')
    (tmp / "junk.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    (tmp / "text.pem").write_text("hello")
    return {"cut": tmp / "cut-mirror" / key_of(records[0]), "cut_flat": tmp / "cut-flat" / "job-0.json",
            "damaged": damaged}  # fmt: skip


# argv (in the world's folder), exit code, what the one line says ({cut}: the truncated file's path as given)
CLI_CASES = [
    (["compact", "--dir", "missing"], 1, "missing is not a directory"),
    (["compact", "--dir", "empty"], 1, "empty is not a mirror of the audit bucket"),
    (["compact", "--dir", "not-records"], 1, "not-records is not a mirror of the audit bucket"),
    (["compact", "--dir", "cut-mirror"], 1, "{cut} is not valid JSON"),
    (["verify", "--dir", "mirror", "--public-key", "missing.pem"], 2, "--public-key missing.pem: cannot read it"),
    (["verify", "--dir", "mirror", "--public-key", "junk.pem"], 2, "--public-key junk.pem is not a PEM"),
    (["verify", "--dir", "mirror", "--public-key", "text.pem"], 2, "--public-key text.pem is not a PEM"),
    (["verify", "--dir", "mirror", "--public-key", "empty"], 2, "--public-key empty: cannot read it"),
    (["report", "--dir", "cut-flat", "--out", "r.html"], 1, "left out: job-0.json"),
    (["query", "--dir", "cut-mirror"], 1, "{cut} is not valid JSON"),
    (["query", "--dir", "cut-flat"], 1, "{cut_flat} is not valid JSON"),
    (["query", "--dir", "damaged-mirror"], 1, "{damaged} is not valid JSON"),
    (["compact", "--dir", "damaged-mirror"], 1, "{damaged} is not valid JSON"),
    (["query", "--dir", "mirror", "--limit", "-3"], 2, "--limit must be a whole number >= 1, got -3"),
    (["query", "--dir", "mirror", "--limit", "0"], 2, "--limit must be a whole number >= 1, got 0"),
    (["verify", "--bucket", "b"], 2, "no AWS region: give --region REGION, or set AWS_DEFAULT_REGION"),
    (["query", "--engine", "athena", "--workgroup", "w", "--database", "d"], 2, "no AWS region"),
    (["report", "--bucket", "b", "--region", "eu-west-1"], 2, "no AWS credentials: set AWS_PROFILE"),
    (["query", "--bucket", "b", "--region", "eu-west-1"], 2, "no AWS credentials"),
    (["query", "--dir", "mirror", "--policy", "aws-30pct-2026"], 2, "go with --deadlines"),
    (["query", "--dir", "mirror", "--deadlines", "--policy", "no-such-policy"], 1, "no-such-policy"),
    (
        ["query", "--dir", "mirror", "--deadlines", "--policy", "aws-30pct-2026", "--policy-file", "junk.pem"],
        2,
        "at most one of --policy",
    ),
]


@pytest.mark.parametrize(("argv", "code", "says"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_bad_cli_input_gets_one_line_and_a_non_zero_exit(tmp_path, monkeypatch, capsys, argv, code, says) -> None:
    from flopsmeter.cli.main import main

    cut = _cli_world(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert main(argv) == code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    expected = says.format(**{name: path.relative_to(tmp_path) for name, path in cut.items()})
    assert "Traceback" not in err and lines, err
    if len(lines) > 1:  # one line per thing left out of a report, each saying so
        assert all(line.startswith("  left out: ") for line in lines), err
    assert expected in lines[0], lines[0]
    assert "/tmp" not in lines[0].replace(str(tmp_path), "")  # names the user's file, never a temporary one


def test_the_readme_counts_the_corpus_as_it_is() -> None:
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8").split())
    assert f"{len(MANIFEST)} malformed bodies" in readme and f"{len(JOB_CASES)} job-level cases" in readme
    assert "the command line's bad input" in readme and len(CLI_CASES) >= 15


# ---- declared figures and model names on the command line: used, or refused with a warning, never silently ----

PRIVATE_HUB = "arn:aws:sagemaker:us-east-1:123456789012:hub-content/H/Model"
DECLARED_AND_NAMED = [
    # a pretraining figure no 7B base could need (issue 23): not used; the unknown-base threshold applies
    (["--pretrain-flops", "5e25", "--base-model", "mistralai/Mistral-7B-v0.1"], 3.3e22, "could plausibly need"),
    (["--pretrain-flops", "5e25", "--base-model", "acme/chat-7B"], 3.3e22, "could plausibly need"),
    # a systemic-risk base under the names people use: the systemic threshold and the Art. 52(1) item
    (["--base-model", "unsloth/Meta-Llama-3.1-405B-bnb-4bit"], 3.3e24, "matched catalog entry"),
    (["--base-model", "allenai/Llama-3.1-Tulu-3-405B"], 3.3e24, "declares the family and size"),
    (["--base-model", "meta.llama3-1-405b-instruct-v1:0"], 3.3e24, "matched catalog entry"),
    (["--base-model", f"{PRIVATE_HUB}/meta-textgeneration-llama-3-1-405b/1.0.0"], 3.3e24, "private SageMaker hub"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "threshold", "says"), DECLARED_AND_NAMED, ids=[c[0][-1] for c in DECLARED_AND_NAMED])
def test_declared_figures_and_model_names_on_classify(capsys, extra, threshold, says) -> None:
    from flopsmeter.cli.main import main

    assert main(["classify", "--flops", "4e24", "--json", *extra]) == 0
    report = json.loads(capsys.readouterr().out)
    primary = next(c for c in report["classifications"] if c["policy"] == report["primary_policy"])
    assert primary["threshold"] == pytest.approx(threshold) and primary["outcome"] == "exceeds"
    assert any(says in w for w in report["warnings"]), report["warnings"]
    assert report["obligations"]["triggered"] is True
    assert report["obligations"]["commission_notification"] is (threshold == 3.3e24)
