#!/usr/bin/env python3
"""CDK app: reads cdk.json context into a DeployConfig, builds the FLOPs Meter stack, synths. No AWS calls.

``CDK_OUTDIR=cdk.out python app.py`` (make synth) works offline; ``npx aws-cdk@2 deploy`` runs the same file.
A bad configuration stops synth with one line per problem.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from infra.config import ConfigError, cdk_json_context  # noqa: E402
from infra.layer import LayerUnavailable  # noqa: E402
from infra.synth import build_app, write_member_template  # noqa: E402


def main() -> int:
    try:
        app, stack = build_app(cdk_json_context(), default_region=os.environ.get("CDK_DEFAULT_REGION") or None)
    except (ConfigError, LayerUnavailable) as err:
        print(f"synth stopped: {err}", file=sys.stderr)
        return 2
    assembly = app.synth()
    write_member_template(stack, assembly.directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
