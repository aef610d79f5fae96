"""Launch ``sagemaker_train.py`` as a SageMaker training job with the meter's settings (needs the SageMaker
Python SDK and AWS credentials; nothing here runs in the project's tests).

    python examples/launch_training_job.py --role arn:aws:iam::123456789012:role/SageMakerRole
"""

from __future__ import annotations

import argparse

from flopsmeter import contract
from flopsmeter.training.emitters import METRIC_DEFINITIONS

ENVIRONMENT = {
    contract.ENV_PRETRAIN_FLOPS: "1.5e24",  # the base model's pretraining compute, if you know it (else omitted)
    contract.ENV_BASE_MODEL: "meta-llama/Llama-3.2-1B",  # looked up in the bundled catalog if PRETRAIN_FLOPS is absent
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", required=True)
    parser.add_argument("--instance-type", default="ml.g5.2xlarge")
    args = parser.parse_args()

    from sagemaker.huggingface import HuggingFace  # the SageMaker Python SDK

    estimator = HuggingFace(
        entry_point="sagemaker_train.py",
        source_dir="examples",  # add a requirements.txt with: flopsmeter[training]
        role=args.role,
        instance_type=args.instance_type,
        instance_count=1,
        transformers_version="4.56",
        pytorch_version="2.8",
        py_version="py312",
        environment=ENVIRONMENT,
        metric_definitions=list(METRIC_DEFINITIONS),  # stdout lines -> SageMaker metrics
        checkpoint_s3_uri=None,  # set it (and use_spot_instances=True) to survive spot interruptions
        hyperparameters={"max-steps": 500, "stop-at": "approaching"},
    )
    estimator.fit(wait=False)


if __name__ == "__main__":
    main()
