#!/bin/bash
# On a lent GPU machine, with .gpucarry sent along (benchmarks/gpu/prepare.py):
# install the carried wheels and model shims, then run the CUDA checks, the
# fine-tuning benchmark and the GPU-relevant tests under device="auto".
# Logs go to $OUT. T1, T2, T3 bound each part in seconds (200 + 120 + 200 by
# default: under 9 minutes with the install, inside one 10-minute call).
set -u
export GPUCARRY=$PWD/.gpucarry
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --target /tmp/site .gpucarry/whl/*.whl || exit 3
export PYTHONPATH=$PWD:/tmp/site:$GPUCARRY/shim:$PWD/benchmarks/gpu
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SKTRANSFER_OFFLINE=1
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
nvidia-smi -L
python3 -c "import torch, timm, transformers, sentence_transformers, sklearn; \
print('torch', torch.__version__, 'timm', timm.__version__, 'transformers', \
transformers.__version__, 'st', sentence_transformers.__version__, 'sklearn', \
sklearn.__version__)" | tee "$OUT/env.log"
echo "== check_cuda"
timeout "${T1:-200}" python3 benchmarks/check_cuda.py 2>&1 | tee "$OUT/check_cuda.log"
echo "== bench_finetune"
timeout "${T2:-120}" python3 benchmarks/bench_finetune.py --n 512 --size 224 \
    --batch-size 64 --epochs 3 --repeats 2 2>&1 | tee "$OUT/bench_finetune.log"
echo "== pytest on cuda"
timeout "${T3:-200}" python3 -m pytest -q -p no:cacheprovider -p failplug -n 8 \
    --timeout 150 tests/test_finetune.py tests/test_finetune_text.py \
    tests/test_finetune_adapt.py tests/test_lora.py tests/test_fewshot.py \
    tests/test_persist.py tests/test_persist_text.py tests/test_image.py \
    tests/test_text.py tests/test_regressor.py tests/test_decode.py \
    tests/test_runtime.py 2>&1 | tee "$OUT/pytest.log" | tail -5
grep '^====' "$OUT/failures.txt" 2>/dev/null | sort -u | head -60
echo "== done"
