"""Demo scenario: managed customization jobs that no user can instrument, classified from what AWS records.

* a SageMaker AI serverless SFT-LoRA job on Llama 3.1 8B (``ServerlessJobConfig`` + ``BillableTokenCount``):
  method ``estimated``;
* a serverless evaluation job of the same model: its compute recorded, none of it counted (guideline para. 118);
* an Amazon Bedrock fine-tuning job: its own event source (``aws.bedrock``), the same queue and classifier,
  ``estimated`` on a documented token bound, with an alert asking for a declaration.

Each is self-checked (``Demo.check``). Emulated: the jobs' lifecycles and token counts are set through
``moto_ext``; nothing runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from flopsmeter import contract
from flopsmeter.audit.record import AuditRecord
from flopsmeter.aws.store import AuditStore
from flopsmeter.local import moto_ext
from flopsmeter.local.demo_session import Demo
from flopsmeter.local.runner import put_state_change
from flopsmeter.local.show import records_table

HUB_MODEL = (
    "arn:aws:sagemaker:{region}:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-1-8b-instruct"
)
SFT_LORA_JOB = "demo-serverless-sft-lora"
EVALUATION_JOB = "demo-serverless-eval"
BEDROCK_JOB = "demo-bedrock-llama-ft"
WHO = "carol"


def _serverless_jobs(region: str) -> tuple[tuple[str, dict[str, str], int], ...]:
    base = HUB_MODEL.format(region=region)
    return (
        (SFT_LORA_JOB, {"BaseModelArn": f"{base}/2.8.1", "JobType": "FineTuning", "CustomizationTechnique": "SFT",
                        "Peft": "LORA", "SequenceLength": "4K"}, 120_000_000),
        (EVALUATION_JOB, {"BaseModelArn": base, "JobType": "Evaluation", "EvaluationType": "BenchmarkEvaluation"},
         20_000_000),
    )  # fmt: skip


def _bedrock_event(demo: Demo, job: dict[str, Any]) -> dict[str, Any]:
    """The event Bedrock sends, shaped like AWS's documented sample (``detail`` = the job, ``jobStatus``)."""
    detail = {
        "version": "0.0",
        "jobName": job["jobName"],
        "jobArn": job["jobArn"],
        "outputModelName": job["outputModelName"],
        "roleArn": job["roleArn"],
        "jobStatus": job["status"],
        "creationTime": job["creationTime"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "baseModelArn": job["baseModelArn"],
        "hyperParameters": job["hyperParameters"],
        "trainingDataConfig": job["trainingDataConfig"],
        "outputDataConfig": job["outputDataConfig"],
    }
    return {
        "source": contract.BEDROCK_EVENT_SOURCE,
        "detail-type": contract.MODEL_CUSTOMIZATION_JOB_STATE_CHANGE,
        "resources": [job["jobArn"]],
        "detail": detail,
    }


def _run_serverless(demo: Demo, end: datetime) -> None:
    sagemaker = demo.caller(WHO)
    for name, config, tokens in _serverless_jobs(demo.resources.region):
        sagemaker.create_training_job(
            TrainingJobName=name,
            RoleArn=f"arn:aws:iam::{demo.resources.account_id}:role/SageMakerExecution",
            OutputDataConfig={"S3OutputPath": "s3://demo-training-output/"},
            StoppingCondition={"MaxRuntimeInSeconds": 86400},
            ServerlessJobConfig=config,
        )
        demo.set_state(name, status="InProgress", creation=end - timedelta(hours=1, minutes=4),
                       start=end - timedelta(hours=1))  # fmt: skip
        demo.set_state(name, status="Completed", end=end, billable_tokens=tokens)
        put_state_change(demo.resources, demo.state_change_event(name))


def _run_bedrock(demo: Demo) -> None:
    bedrock = demo.caller(WHO, "bedrock")
    bedrock.create_model_customization_job(
        jobName=BEDROCK_JOB,
        customModelName=f"{BEDROCK_JOB}-model",
        roleArn=f"arn:aws:iam::{demo.resources.account_id}:role/BedrockCustomization",
        baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0",
        customizationType="FINE_TUNING",
        hyperParameters={"epochCount": "2", "batchSize": "1", "learningRate": "0.0001"},
        trainingDataConfig={"s3Uri": "s3://demo-bedrock-data/train.jsonl"},
        outputDataConfig={"s3Uri": "s3://demo-bedrock-data/output/"},
    )
    moto_ext.set_model_customization_job_state(
        BEDROCK_JOB,
        moto_ext.CustomizationJobState(status="Completed"),
        account_id=demo.resources.account_id,
        region=demo.resources.region,
        endpoint=demo.resources.endpoint,
    )
    job = demo.aws("bedrock").get_model_customization_job(jobIdentifier=BEDROCK_JOB)
    put_state_change(demo.resources, _bedrock_event(demo, job))


def _records(demo: Demo) -> dict[str, AuditRecord]:
    store = AuditStore(demo.aws("s3"), demo.resources.audit_bucket)
    found: dict[str, AuditRecord] = {}
    for obj in store.list_keys("records/"):
        record = store.get_record(obj["Key"])
        if record.job.name in (SFT_LORA_JOB, EVALUATION_JOB, BEDROCK_JOB):
            found[record.job.name] = record
    return found


def _explain(records: dict[str, AuditRecord]) -> Table:
    table = Table("job", "service / kind", "base model (hub / Bedrock id)", "tokens (basis)", "estimate",
                  "counted", "declaration")  # fmt: skip
    for name, r in records.items():
        block = r.customization
        if block is None:
            continue
        est = block.estimate
        table.add_row(name, f"{block.service} / {block.kind}", f"{block.base_model_name} -> {r.base_model.model_id}",
                      f"{est.tokens:,} ({est.tokens_basis[:60]})", f"{est.flops:.2e} ({est.technique})",
                      f"{r.flops.classified_flops:.2e}", "needed" if est.needs_declaration else "-")  # fmt: skip
    return table


def run_customization_scenario(demo: Demo) -> None:
    demo.section("Managed customization: SageMaker serverless (SFT-LoRA, evaluation) and Amazon Bedrock")
    _run_serverless(demo, datetime.now(UTC) - timedelta(minutes=2))
    _run_bedrock(demo)
    demo.out.print("2 serverless jobs (DescribeTrainingJob: ServerlessJobConfig, BillableTokenCount) and 1 Bedrock job "
                   "(aws.bedrock 'Model Customization Job State Change') put on the default bus")  # fmt: skip
    demo.run_classifier("managed customization jobs")
    records = _records(demo)
    demo.out.print(records_table(records.values(), title="Managed customization jobs in the audit trail"))
    demo.out.print(_explain(records))
    sft, evaluation, bedrock = (records.get(n) for n in (SFT_LORA_JOB, EVALUATION_JOB, BEDROCK_JOB))
    demo.check(
        "a serverless SFT-LoRA job is estimated from its BillableTokenCount and its hub model",
        sft is not None and sft.flops.method == "estimated" and sft.customization is not None
        and sft.customization.estimate.tokens_known and sft.base_model.model_id == "meta-llama/Llama-3.1-8B",
    )  # fmt: skip
    demo.check(
        "a serverless evaluation keeps its compute and adds none to the modification",
        evaluation is not None and evaluation.customization is not None
        and evaluation.customization.kind == "evaluation" and evaluation.customization.estimate.flops > 0
        and evaluation.flops.classified_flops == 0 and evaluation.outcome == "below",
    )  # fmt: skip
    demo.check(
        "a Bedrock customization job is classified (estimated, declaration asked for, creator from CloudTrail)",
        bedrock is not None and bedrock.flops.method == "estimated" and bedrock.customization is not None
        and bedrock.customization.estimate.needs_declaration and bedrock.cloudtrail.status == "found",
    )  # fmt: skip
