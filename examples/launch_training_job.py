"""Launch ``sagemaker_train.py`` as a SageMaker training job with SageMaker Python SDK v3 (``ModelTrainer``), with
the meter's settings (needs ``pip install sagemaker`` (3.x) and AWS credentials; nothing here runs in the
project's tests).

    make example-wheel    # this project's wheel into examples/wheels/, which requirements.txt installs in the job
    python examples/launch_training_job.py --role arn:aws:iam::123456789012:role/SageMakerRole

The opt-in itself is the one line in ``sagemaker_train.py`` (``callbacks=[FlopsMeterCallback(...)]``); this
launcher adds what the service reads: the base model in the environment and the meter's stdout metric
definitions (the second channel, DescribeTrainingJob's ``FinalMetricDataList``). The SDK v2 ``Estimator`` /
``HuggingFace`` classes are gone in v3; a legacy v2 snippet is in docs/training.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flopsmeter import contract
from flopsmeter.training.emitters import METRIC_DEFINITIONS

ENVIRONMENT = {
    contract.ENV_PRETRAIN_FLOPS: "1.5e24",  # the base model's pretraining compute, if you know it (else omitted)
    contract.ENV_BASE_MODEL: "meta-llama/Llama-3.2-1B",  # looked up in the bundled catalog if PRETRAIN_FLOPS is absent
}


HERE = Path(__file__).resolve().parent


def shipped_wheel() -> Path:
    """The wheel requirements.txt names (this project's own, built by ``make example-wheel``)."""
    line = next(x for x in (HERE / "requirements.txt").read_text().splitlines() if x.startswith("./wheels/"))
    return HERE / line.split("[", 1)[0]


def main() -> None:
    if not shipped_wheel().is_file():
        sys.exit(f"launch_training_job: {shipped_wheel().name} is not in examples/wheels/: run `make example-wheel`")
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", required=True)
    parser.add_argument("--instance-type", default="ml.g5.2xlarge")
    parser.add_argument("--training-image", help="a PyTorch / Hugging Face training image URI (default: looked up)")
    args = parser.parse_args()

    # SageMaker Python SDK v3: ModelTrainer replaces Estimator; configs live in sagemaker.core.training.configs.
    from sagemaker.core import image_uris
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, MetricDefinition, SourceCode
    from sagemaker.train import ModelTrainer

    session = Session()
    image = args.training_image or image_uris.retrieve(
        framework="huggingface",
        region=session.boto_region_name,
        version="4.49.0",
        base_framework_version="pytorch2.5.1",
        py_version="py311",
        image_scope="training",
        instance_type=args.instance_type,
    )
    trainer = ModelTrainer(
        sagemaker_session=session,
        role=args.role,
        training_image=image,
        source_code=SourceCode(
            source_dir="examples",
            entry_script="sagemaker_train.py",
            requirements="requirements.txt",  # this project's wheel in examples/wheels/, with the training extra
        ),
        compute=Compute(instance_type=args.instance_type, instance_count=1),
        environment=ENVIRONMENT,
        hyperparameters={"max-steps": 500, "stop-at": "approaching"},
    ).with_metric_definitions(  # stdout lines -> SageMaker metrics (FinalMetricDataList)
        [MetricDefinition(name=m["Name"], regex=m["Regex"]) for m in METRIC_DEFINITIONS]
    )
    trainer.train(wait=False)


if __name__ == "__main__":
    main()
