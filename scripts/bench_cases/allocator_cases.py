"""``ddpm_frames_allocator``: what serving even host blocks of 32 MB and more from the heap
(``keep_freed_host_memory(large_blocks=True)``, which ``scripts/pretrain.py`` sets) buys image
pre-training, against glibc's defaults: DDPM training steps on batches of Atari-sized
``[4, 84, 84]`` frames, whose U-Net allocates and frees activations of tens to hundreds of MB
every step. The allocator setting is process-wide, so each side runs in a child process of its
own; both use the same torch threads, frames, model and seed. ``ratio`` is the default's
seconds over the heap's: above 1, the setting pays."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

CASE = "ddpm_frames_allocator"
STEPS, QUICK_STEPS, BATCH, QUICK_BATCH = 6, 1, 64, 4

CHILD = """
import json, sys, time, torch
from agents.host_allocator import keep_freed_host_memory
from representation.generative import DDPM
large_blocks, steps, batch = sys.argv[1] == "heap", int(sys.argv[2]), int(sys.argv[3])
if large_blocks:
    keep_freed_host_memory(large_blocks=True)
torch.manual_seed(0)
frames = torch.randint(0, 256, (steps * batch, 4, 84, 84), dtype=torch.uint8)
model = DDPM(frames.shape[1:])
model.fit(frames[:batch], epochs=1, batch_size=batch, progress=False)  # warm-up: first allocations
start = time.perf_counter()
model.fit(frames, epochs=1, batch_size=batch, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start, "threads": torch.get_num_threads()}))
"""


def seconds(allocator: str, steps: int, batch: int) -> dict:
    """``steps`` DDPM steps of batch ``batch`` in a fresh process with ``allocator`` (default or heap)."""
    done = subprocess.run([sys.executable, "-c", CHILD, allocator, str(steps), str(batch)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> Iterator[dict]:
    steps, batch = (QUICK_STEPS, QUICK_BATCH) if quick else (STEPS, BATCH)
    default, heap = seconds("default", steps, batch), seconds("heap", steps, batch)
    yield {"case": CASE, "steps": steps, "batch_size": batch, "torch_threads": default["threads"],
           "default_s": round(default["seconds"], 2), "large_blocks_s": round(heap["seconds"], 2),
           "ratio": round(default["seconds"] / heap["seconds"], 3)}
