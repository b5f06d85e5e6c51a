"""Padded tokens per batch: our length-grouped batches vs transformers LengthGroupedSampler vs random batches.

    python bench/nli_padding.py   # numbers quoted in docs/benchmarks.md (NLI vs Trainer section)

Also the padded tokens of the first 30 batches of each (what a 30-step `bench_nli_trainer.py` run trains on).
"""
import sys, numpy as np, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from nli_bench_common import mnli_pairs
from adaptlab.nli.models import load_tokenizer
from adaptlab.nli.batches import encode_pairs, length_grouped_batches
from transformers.trainer_pt_utils import LengthGroupedSampler
frame = mnli_pairs(1000); tok = load_tokenizer("minilm")
lengths = np.array([len(f["input_ids"]) for f in encode_pairs(tok, frame, 128)])
print("real tokens mean", lengths.mean())
ours = length_grouped_batches(lengths, 16, 0, 0)
def padded(batches): return np.mean([lengths[b].max() for b in batches]), np.mean([lengths[b].max()*len(b) for b in batches])/np.mean([lengths[b].sum() for b in batches])
print("ours  (mean padded len, padded/real)", padded(ours))
g = torch.Generator().manual_seed(0)
idx = list(LengthGroupedSampler(16, lengths=lengths.tolist(), generator=g))
print("hf grouped", padded([idx[i:i+16] for i in range(0, len(idx), 16)]))
rnd = torch.randperm(len(lengths), generator=g).tolist()
print("random", padded([rnd[i:i+16] for i in range(0, len(rnd), 16)]))
print("maxlen", 128, 128*16/ (lengths.mean()*16))
def first(batches, n=30): return int(sum(lengths[b].max() * len(b) for b in batches[:n]))
print("padded tokens, first 30 batches: ours", first(ours), "hf grouped", first([idx[i:i+16] for i in range(0, len(idx), 16)]))
