#!/usr/bin/env bash
# GPU check of the training meter: one GPU (sized for an H200), under 5 minutes, no network, no pip install.
# Needs python3 with torch, transformers and peft; boto3 is NOT needed (CloudWatch is off without a job name).
#
#   bash bench/gpu_overhead.sh            # prints one JSON object; also writes parts to $OUT if set
#
# 1. overhead on the GPU: bf16 Llama-shaped ~0.5 B params, 4 x 2048 tokens per step, meter on/off interleaved,
#    plus the no-host-sync proof (torch.cuda.set_sync_debug_mode("error") around metered steps);
# 2. overhead on that machine's (idle) CPU, the same benchmark as `make bench-overhead`;
# 3. the accuracy benchmark (CPU, eager) with that machine's torch/transformers versions (a compatibility check).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
PARTS="${OUT:-$(mktemp -d)}"
cd "$REPO"

run() {  # name, time limit (s), command...
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS rc=0
  timeout "$limit" "$@" >"$PARTS/$name.json" 2>"$PARTS/$name.err" || rc=$?
  echo "{\"part\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - started))}" >"$PARTS/$name.status"
}

run gpu_overhead 150 "$PY" -W ignore -m bench.overhead --device cuda --dtype bf16 --check-sync \
  --hidden 2048 --layers 8 --heads 16 --kv-heads 8 --inter 5632 --vocab 32000 --seq 2048 --batch 4 \
  --rounds 10 --block 5 --warmup 3
run cpu_overhead 60 "$PY" -W ignore -m bench.overhead --rounds 10 --block 5
run accuracy 60 "$PY" -W ignore -m bench.accuracy

"$PY" - "$PARTS" <<'PYEOF'
import json, pathlib, platform, sys
parts = pathlib.Path(sys.argv[1])
out = {"benchmark": "gpu_overhead.sh", "python": platform.python_version()}
try:
    import torch, transformers
    out.update(torch=torch.__version__, transformers=transformers.__version__,
               cuda=torch.cuda.is_available() and torch.cuda.get_device_name())
except Exception as err:  # report, do not hide
    out["import_error"] = repr(err)
for name in ("gpu_overhead", "cpu_overhead", "accuracy"):
    status = json.loads((parts / f"{name}.status").read_text())
    try:
        status["result"] = json.loads((parts / f"{name}.json").read_text())
    except ValueError:
        status["stderr_tail"] = (parts / f"{name}.err").read_text()[-2000:]
    out[name] = status
print(json.dumps(out, indent=2))
PYEOF
