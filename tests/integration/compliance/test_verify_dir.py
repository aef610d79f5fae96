"""verify --dir on a mirror pulled from a real trail (moto), tampered file by file.

The trail is built once per module on moto (Object Lock bucket, KMS RSA key, emulated clock) and pulled with
``mirror.pull``; each test tampers a copy of that mirror.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from moto import mock_aws

from flopsmeter.audit.digests import public_key_pem
from flopsmeter.audit.record import canonical_json
from flopsmeter.cli.main import main
from flopsmeter.compliance.mirror import MANIFEST_NAME, pull
from flopsmeter.compliance.verify import DirSource, render_text, verified_and_not, verify
from tests.support.trail import T0, build_trail


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    root = tmp_path_factory.mktemp("mirror")
    with mock_aws(), pytest.MonkeyPatch.context() as mp:
        trail = build_trail(mp)
        stats = pull(trail.store, root, now=trail.clock.now)
        pem = tmp_path_factory.mktemp("key") / "digest-key.pem"
        pem.write_bytes(public_key_pem(bytes(trail.kms.get_public_key(KeyId=trail.key_id)["PublicKey"])))
        names = {name: trail.key(name) for name in trail.records}
    return {"root": root, "pem": pem, "keys": names, "digests": list(trail.digests), "stats": stats}


@pytest.fixture
def mirror(golden, tmp_path):
    root = tmp_path / "mirror"
    shutil.copytree(golden["root"], root)
    return root


def check(root, **kwargs):
    return verify(DirSource(root, **kwargs))


def problems(report):
    return {(f.object, f.problem) for f in report.failures}


def edit_json(path, change):
    document = json.loads(path.read_bytes())
    change(document)
    path.write_bytes(canonical_json(document))


def test_pulled_mirror_verifies_with_the_supplied_public_key(golden, mirror):
    assert golden["stats"].downloaded == 6 + 3 + 1  # records, digests, the public key copy
    report = check(mirror, public_key_file=golden["pem"])
    assert not report.failures, render_text(report)
    assert report.notes[0] == "public key: supplied with --public-key"
    assert report.not_yet_covered == [golden["keys"]["job-f"]] and report.verdict == "UNVERIFIED"
    assert report.pulled_objects_checked == 10


def test_mirror_key_copy_is_used_but_flagged_as_not_a_trust_anchor(mirror):
    report = check(mirror)
    assert not report.failures
    assert "not an independent trust anchor" in report.notes[0]
    assert any(line.startswith("the signing key itself") for line in verified_and_not(report)[1])


def without_digests(mirror):
    """The mirror of a bucket that holds records but no digest yet (pulled before the first hourly digest)."""
    shutil.rmtree(mirror / "digests")
    edit_json(
        mirror / MANIFEST_NAME,
        lambda d: d.update(objects={k: v for k, v in d["objects"].items() if not k.startswith("digests/")}),
    )
    return mirror


def test_a_mirror_no_digest_covers_is_unverified_and_a_record_removed_from_it_fails(golden, mirror, capsys):
    root = str(without_digests(mirror))
    assert main(["verify", "--dir", root]) == 1  # pulled 3.5 h after the first record: digests overdue
    assert "digest_overdue" in capsys.readouterr().out
    assert main(["verify", "--dir", root, "--max-digest-age-hours", "0"]) == 3
    text = capsys.readouterr().out
    assert "Result: UNVERIFIED (6 record(s) not covered by a signed digest; nothing failed)" in text
    assert "Result: OK" not in text and "6 record(s) listed in no digest yet" in text
    key = golden["keys"]["job-b"]
    (mirror / key).unlink()  # the pull manifest still lists it
    assert main(["verify", "--dir", root, "--max-digest-age-hours", "0"]) == 1
    text = capsys.readouterr().out
    assert (
        f"FAIL {key}: record_missing: listed in the pull manifest" in text and "Result: FAILED (1 problem(s))" in text
    )


def test_a_record_no_digest_lists_yet_removed_from_the_mirror_fails(golden, mirror):
    key = golden["keys"]["job-f"]
    (mirror / key).unlink()
    assert [(f.object, f.problem) for f in check(mirror).failures] == [(key, "record_missing")]


def test_a_file_the_pull_did_not_bring_fails(golden, mirror):
    stray = mirror / "compacted/v1/account=123456789012/region=eu-west-1/date=2026-01-05/notes.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("x")
    found = problems(check(mirror))
    assert (stray.relative_to(mirror).as_posix(), "not_pulled") in found


def test_altered_record_body_in_the_mirror(golden, mirror):
    key = golden["keys"]["job-b"]
    edit_json(mirror / key, lambda d: d["flops"].update(classified_flops=1.0))
    finding = next(f for f in check(mirror).failures if f.object == key)
    assert finding.problem == "record_altered" and "no longer matches its sha256 field" in finding.detail


def test_altered_sha256_field_in_the_mirror(golden, mirror):
    key = golden["keys"]["job-a"]
    edit_json(mirror / key, lambda d: d.update(sha256="1" * 64))
    assert (key, "record_sha256_altered") in problems(check(mirror))


def test_deleted_record_in_the_mirror(golden, mirror):
    key = golden["keys"]["job-d"]
    (mirror / key).unlink()
    finding = next(f for f in check(mirror).failures if f.object == key)
    assert finding.problem == "record_missing" and golden["digests"][1] in finding.detail


def test_extra_record_without_manifest_entry_is_dated_by_recorded_at(golden, mirror):
    source = mirror / golden["keys"]["job-a"]
    extra = source.with_name("job-zz.json")
    edit_json(source, lambda d: None)
    extra.write_bytes(source.read_bytes())  # a copy, claiming a time inside the digested hours
    key = extra.relative_to(mirror).as_posix()
    assert (key, "not_in_digest") in problems(check(mirror))


def test_reordered_digest_entries_in_the_mirror(golden, mirror):
    key = golden["digests"][0]
    edit_json(mirror / key, lambda d: d["records"].reverse())
    assert {(key, "digest_entries_reordered"), (key, "digest_altered")} <= problems(check(mirror))


def test_altered_digest_entry_in_the_mirror(golden, mirror):
    key = golden["digests"][1]
    edit_json(mirror / key, lambda d: d["records"][0].update(version_id="forged"))
    assert (key, "digest_altered") in problems(check(mirror))


def test_swapped_digests_break_location_and_chain(golden, mirror):
    first, second = (mirror / golden["digests"][1]), (mirror / golden["digests"][2])
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)
    report = check(mirror)
    print(render_text(report))
    assert {(golden["digests"][1], "digest_moved"), (golden["digests"][2], "digest_moved")} <= problems(report)
    assert {(golden["digests"][1], "bad_signature"), (golden["digests"][2], "bad_signature")} <= problems(report)


def test_deleted_digest_in_the_mirror(golden, mirror):
    key = golden["digests"][1]
    (mirror / key).unlink()
    assert (key, "digest_missing") in problems(check(mirror))


def test_bad_signature_in_the_mirror(golden, mirror):
    key = golden["digests"][2]

    def flip(document):
        value = document["signature"]["value"]
        document["signature"]["value"] = ("B" if value[0] == "A" else "A") + value[1:]

    edit_json(mirror / key, flip)
    assert (key, "bad_signature") in problems(check(mirror, public_key_file=golden["pem"]))


def test_overdue_digest_from_the_manifest_pull_time(golden, mirror):
    manifest = mirror / MANIFEST_NAME
    edit_json(manifest, lambda d: d.update(pulled_at=(T0 + timedelta(hours=8)).isoformat()))
    assert [f.problem for f in check(mirror).failures] == ["digest_overdue"]


def test_mirror_without_manifest_still_verifies_hashes_and_chain(golden, mirror):
    (mirror / MANIFEST_NAME).unlink()
    report = check(mirror)
    assert not report.failures and "without manifest" in report.source
    assert "that no file was removed from this folder (no pull manifest)" in verified_and_not(report)[1]


def test_cli_verify_dir_json(golden, mirror, capsys):
    (mirror / golden["keys"]["job-c"]).write_bytes(b"not json")
    assert main(["verify", "--dir", str(mirror), "--public-key", str(golden["pem"]), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [(f["object"], f["problem"]) for f in document["failures"]] == [
        (golden["keys"]["job-c"], "record_unreadable")
    ]


def test_an_object_among_the_public_keys_that_is_not_one_is_reported(golden, mirror):
    stray = mirror / "digests/v1/public-keys/notes.json"
    stray.write_text("{}")
    report = check(mirror, public_key_file=golden["pem"])
    assert ("digests/v1/public-keys/notes.json", "unexpected_object") in problems(report)


def test_a_flat_folder_of_records_is_not_taken_for_an_empty_mirror(golden, tmp_path, capsys):
    key = next(iter(golden["keys"].values()))
    (tmp_path / "job.json").write_bytes((golden["root"] / key).read_bytes())
    assert main(["verify", "--dir", str(tmp_path)]) == 1
    assert "is not a mirror of the audit bucket" in capsys.readouterr().err


def test_the_report_states_what_was_and_was_not_verified(golden, mirror, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--dir", str(mirror), "--out", str(out)]) == 0
    assert (
        "integrity UNVERIFIED (1 record(s) not covered by a signed digest; nothing failed)" in capsys.readouterr().out
    )
    html = " ".join(out.read_text(encoding="utf-8").split())
    assert "Integrity NOT fully verified." in html and "Integrity verified." not in html
    assert "5 of 6 record(s) listed, with the same version and hashes, in a signed digest" in html
    assert "1 record(s) listed in no digest yet" in html and "no record was altered" not in html
    assert main(["report", "--dir", str(mirror), "--out", str(out), "--no-verify"]) == 0
    assert "Integrity not checked." in out.read_text(encoding="utf-8")
