"""Managed customization jobs through the classifier service (fakes): SageMaker serverless SFT-LoRA, an evaluation,
a missing token count, a recipe job, and Amazon Bedrock customization jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from flopsmeter.domain.customization import estimate_bedrock_job, estimate_serverless_job
from flopsmeter.errors import CloudTrailPending, JobNotFound, PermanentError
from flopsmeter.service.bedrock import bedrock_summary_record_key, classify_bedrock_job
from flopsmeter.service.classifier import classify_and_record
from flopsmeter.service.dependencies import ClassifyRequest
from flopsmeter.service.reconcile import reconcile
from tests.support.fakes import World

HUB = "arn:aws:sagemaker:eu-west-1:aws:hub-content/SageMakerPublicHub/Model"
SFT_LORA = {"BaseModelArn": f"{HUB}/meta-textgeneration-llama-3-1-8b-instruct/2.8.1", "JobType": "FineTuning",
            "CustomizationTechnique": "SFT", "Peft": "LORA", "SequenceLength": "4K"}  # fmt: skip


def serverless(world: World, name: str, config: dict[str, Any], tokens: int | None) -> dict[str, Any]:
    job = world.jobs.add(name, instance_type="unknown", hours=1.0)
    del job["ResourceConfig"]  # serverless: no instances to choose
    job["ServerlessJobConfig"] = config
    if tokens is not None:
        job["BillableTokenCount"] = tokens
    world.trail.add(name)
    return job


def run(world: World, name: str) -> Any:
    result = classify_and_record(ClassifyRequest(name, "evt-1"), world.deps, world.config)
    assert result.status == "recorded" and result.record is not None
    return result.record


def test_serverless_sft_lora_is_estimated_from_billable_tokens(world: World) -> None:
    serverless(world, "sft-lora-serverless", SFT_LORA, 50_000_000)
    record = run(world, "sft-lora-serverless")
    expected = estimate_serverless_job(SFT_LORA, 50_000_000)
    assert record.flops.method == "estimated"
    assert record.flops.classified_flops == pytest.approx(expected.estimate.flops)
    assert record.flops.tokens == 50_000_000
    assert record.customization.service == "sagemaker-serverless"
    assert record.customization.base_model_version == "2.8.1"
    assert record.customization.estimate.technique == "sft" and record.customization.adapters is True
    assert record.base_model.model_id == "meta-llama/Llama-3.1-8B" and record.base_model.source == "catalog"
    assert record.lineage.own_flops == record.flops.classified_flops
    assert record.outcome == "below" and world.publisher.alerts == []
    assert any("bounds nothing" in w for w in record.warnings)


def test_a_tag_still_overrides_the_hub_base_model(world: World) -> None:
    job = serverless(world, "sft-tagged", SFT_LORA, 1_000)
    world.jobs.tag_map[job["TrainingJobArn"]] = {"flopsmeter:pretrain-flops": "8e23"}  # within 30 % of the catalog
    assert run(world, "sft-tagged").base_model.source == "tag"


def test_evaluation_keeps_its_compute_and_is_never_a_crossing(world: World) -> None:
    config = {**SFT_LORA, "JobType": "Evaluation", "EvaluationType": "BenchmarkEvaluation"}
    serverless(world, "eval-serverless", config, 10**13)  # enough forward passes to cross, were they counted
    record = run(world, "eval-serverless")
    assert record.customization.kind == "evaluation"
    assert record.customization.estimate.flops > 3.3e22
    assert record.flops.classified_flops == 0.0 and record.lineage.cumulative_flops == 0.0
    assert {c.outcome for c in record.classifications} == {"below"}
    assert world.publisher.alerts == []


def test_missing_token_count_is_classified_conservatively_and_asks_for_a_declaration(world: World) -> None:
    serverless(world, "sft-no-tokens", SFT_LORA, None)
    record = run(world, "sft-no-tokens")
    assert record.customization.estimate.needs_declaration and not record.customization.estimate.tokens_known
    assert record.flops.tokens is None
    assert record.outcome == "exceeds"
    ((_subject, message, attributes),) = world.publisher.alerts
    assert "Declaration needed" in message and attributes["declaration_needed"] == "true"


def test_recipe_job_records_its_recipe_and_keeps_its_ceiling(world: World) -> None:
    job = world.jobs.add("recipe-llama3-lora", instance_type="ml.p5.48xlarge")
    job["HyperParameters"] = {"config-path": ".", "config-name": "recipe.yaml"}
    job["Environment"]["TRAINING_RECIPE"] = "fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora"
    world.trail.add("recipe-llama3-lora")
    record = run(world, "recipe-llama3-lora")
    assert record.flops.method == "hardware_ceiling" and record.customization is None
    assert (record.recipe.recipe, record.recipe.seq_len) == ("fine-tuning/llama/hf_llama3_8b_seq8k_gpu_lora", 8192)
    assert record.recipe.catalog_model_id == "meta-llama/Meta-Llama-3-8B"


def test_a_plain_training_job_has_neither_block(world: World) -> None:
    world.jobs.add("plain-job")
    world.trail.add("plain-job")
    record = run(world, "plain-job")
    assert record.customization is None and record.recipe is None


# ---- Bedrock -------------------------------------------------------------------------------------------------


def bedrock_run(world: World, name: str) -> Any:
    result = classify_bedrock_job(ClassifyRequest(name, "evt-b"), world.deps, world.config)
    assert result.status == "recorded" and result.record is not None
    return result


def test_bedrock_fine_tuning_is_estimated_and_asks_for_a_declaration(world: World) -> None:
    job = world.bedrock.add("support-bot-ft", hyper_parameters={"epochCount": "2"})
    result = bedrock_run(world, "support-bot-ft")
    record = result.record
    assert result.key.endswith("/bedrock.support-bot-ft.json")
    assert record.flops.method == "estimated"
    assert record.flops.classified_flops == pytest.approx(estimate_bedrock_job(job).estimate.flops)
    assert record.customization.service == "bedrock" and record.customization.estimate.needs_declaration
    assert record.base_model.model_id == "meta-llama/Llama-3.1-8B"
    assert record.cloudtrail.status == "found" and record.cloudtrail.principal_arn.endswith("/MLEngineer/alice")
    assert record.job.arn == job["jobArn"] and record.job.status == "Completed"
    ((subject, _message, attributes),) = world.publisher.alerts  # below the threshold, yet alerted
    assert record.outcome == "below" and "declaration needed" in subject and attributes["declaration_needed"] == "true"


def test_bedrock_tags_declare_the_base_models_compute(world: World) -> None:
    job = world.bedrock.add("nova-ft", base_model="amazon.nova-micro-v1:0")
    world.bedrock.tag_map[job["jobArn"]] = {"flopsmeter:pretrain-flops": "2e24"}
    record = bedrock_run(world, "nova-ft").record
    assert record.base_model.source == "tag" and record.base_model.pretrain_flops == 2e24
    assert record.customization.estimate.cost_known is False


def test_bedrock_redelivery_is_a_duplicate(world: World) -> None:
    world.bedrock.add("support-bot-ft")
    bedrock_run(world, "support-bot-ft")
    again = classify_bedrock_job(ClassifyRequest("support-bot-ft", "evt-b2"), world.deps, world.config)
    assert again.status == "duplicate" and len(world.store.records()) == 1


def test_bedrock_in_progress_is_ignored_and_unknown_jobs_are_permanent(world: World) -> None:
    world.bedrock.add("still-running", status="InProgress")
    assert classify_bedrock_job(ClassifyRequest("still-running"), world.deps, world.config).status == "ignored"
    with pytest.raises(JobNotFound):
        classify_bedrock_job(ClassifyRequest("no-such-job"), world.deps, world.config)


def test_bedrock_provenance_waits_for_cloudtrail_then_records_not_found(world: World) -> None:
    world.bedrock.add("no-trail", created_by=None)
    with pytest.raises(CloudTrailPending):
        classify_bedrock_job(ClassifyRequest("no-trail"), world.deps, world.config)
    world.now = world.now.replace(year=world.now.year + 1)
    assert bedrock_run(world, "no-trail").record.cloudtrail.status == "not_found"


def test_without_a_bedrock_client_the_event_is_a_permanent_failure(world: World) -> None:
    world.deps.bedrock = None
    with pytest.raises(PermanentError, match="no Bedrock client"):
        classify_bedrock_job(ClassifyRequest("any"), world.deps, world.config)


def test_the_reconciler_records_a_bedrock_job_whose_event_was_lost(world: World) -> None:
    world.bedrock.add("lost-bedrock-event")
    world.bedrock.add("recorded-bedrock-job")
    bedrock_run(world, "recorded-bedrock-job")
    world.bedrock.add("long-ago", end=world.now - timedelta(days=10))  # outside the lookback window
    world.bedrock.add("running", status="InProgress")
    report = reconcile(world.deps, world.config, lookback_hours=24)
    assert report.recorded == ["lost-bedrock-event"] and report.already_recorded == 1
    (record,) = [r for r in world.store.records().values() if r.job.name == "lost-bedrock-event"]
    assert record.eventbridge_event_id is None and record.warnings[0].startswith("reconciled:")


def test_the_bedrock_summary_key_is_the_records_key(world: World) -> None:
    world.bedrock.add("support-bot-ft")
    result = bedrock_run(world, "support-bot-ft")
    (summary,) = world.bedrock.recent_terminal_jobs(world.now)
    assert bedrock_summary_record_key(summary) == result.key
    assert bedrock_summary_record_key({**summary, "jobName": "../x"}) is None
