"""The record's managed-customization and recipe blocks: optional, absent from older-shaped records' JSON."""

from __future__ import annotations

import json

from flopsmeter.audit.record import AuditRecord, CustomizationInfo, RecipeInfo, stored_sha256_matches
from flopsmeter.domain.customization import estimate_serverless_job
from flopsmeter.domain.recipes import recipe_from_job
from tests.support.records import make_record

ARN = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/meta-textgeneration-llama-3-2-1b/1.0.0"


def test_a_record_without_the_blocks_keeps_its_old_json_shape() -> None:
    document = json.loads(make_record().to_json_bytes())
    assert "customization" not in document and "recipe" not in document
    assert stored_sha256_matches(document)


def test_customization_and_recipe_blocks_round_trip_and_seal() -> None:
    estimate = estimate_serverless_job({"BaseModelArn": ARN, "JobType": "FineTuning", "CustomizationTechnique": "SFT",
                                        "Peft": "LORA", "SequenceLength": "2K"}, 1_000_000)  # fmt: skip
    recipe = recipe_from_job({"recipe": "hf_llama3_8b_seq8k_gpu_lora"}, {})
    assert recipe is not None
    record = (
        make_record()
        .model_copy(
            update={
                "customization": CustomizationInfo.model_validate(estimate.as_dict()),
                "recipe": RecipeInfo.model_validate(recipe.as_dict()),
            }  # fmt: skip
        )
        .sealed()
    )
    document = json.loads(record.to_json_bytes())
    assert document["customization"]["estimate"]["method"] == "estimated"
    assert document["customization"]["base_model_version"] == "1.0.0"
    assert document["recipe"]["seq_len"] == 8192
    assert stored_sha256_matches(document)
    assert AuditRecord.model_validate_json(record.to_json_bytes()) == record
