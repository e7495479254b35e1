#!/usr/bin/env python3
"""Prefix caching with FlexKv under vLLM (needs vLLM and a GPU or vLLM's CPU backend).

Three runs of the same greedy prompts sharing a long prefix:
  1. baseline: vLLM without prefix caching;
  2. vLLM with prefix caching and the FlexKVConnectorV1 connector, after a warm-up request
     whose KV FlexKv saves;
  3. the same after ``reset_prefix_cache()``, so every hit must come from FlexKv.
The generated texts of 2 and 3 are compared with the baseline, and the tokens served from a
cache are printed (``RequestOutput.num_cached_tokens``).

    examples/prefix_caching_flexkv.py --model Qwen/Qwen2.5-0.5B-Instruct
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

PREFIX = (
    "You are an expert school principal, skilled in effectively managing faculty and staff. "
    "Draft 10-15 questions for a potential first grade Head Teacher for my K-12, all-girls', "
    "independent school that emphasizes community, joyful discovery, and life-long learning. "
    "The candidate is coming in for a first-round panel interview for a 8th grade Math "
    "teaching role. They have 5 years of previous teaching experience as an assistant teacher "
    "at a co-ed, public school with experience in middle school math teaching. Based on this "
    "information, fulfill the following paragraph: ") * 4
ENDINGS = ["Hello, my name is", "The president of the United States is",
           "The capital of France is", "The future of AI is"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="vLLM prefix caching served from FlexKv")
    p.add_argument("--model", required=True, help="model name or path")
    p.add_argument("--tp-size", type=int, default=1, help="tensor parallel size")
    p.add_argument("--gpu-memory-util", type=float, default=0.4, help="gpu_memory_utilization")
    p.add_argument("--cpu-cache-gb", type=float, default=4.0, help="FlexKv CPU tier size")
    p.add_argument("--max-tokens", type=int, default=32)
    return p.parse_args(argv)


def generate(llm, prompts, params):
    outs = llm.generate(prompts, params)
    return [o.outputs[0].text for o in outs], sum(getattr(o, "num_cached_tokens", 0) or 0 for o in outs)


def main(argv=None) -> None:
    a = parse_args(argv)
    try:  # imported here so --help works without vLLM
        from vllm import LLM, SamplingParams
        from vllm.distributed import cleanup_dist_env_and_memory
    except ModuleNotFoundError as e:
        if e.name != "vllm" and not (e.name or "").startswith("vllm."):
            raise  # vLLM is there but something it needs is not: its own error says what
        sys.exit(f"this example runs vLLM, which is not installed for {sys.executable}: "
                 "install vLLM (and the FlexKv wheel) in this environment, then run it again")

    prompts = [PREFIX + e for e in ENDINGS]
    params = SamplingParams(temperature=0.0, max_tokens=a.max_tokens)
    fd, path = tempfile.mkstemp(prefix="flexkv_config_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump({"cpu_cache_gb": a.cpu_cache_gb}, f)
    os.environ["FLEXKV_CONFIG_PATH"] = path
    try:
        llm = LLM(model=a.model, enable_prefix_caching=False, gpu_memory_utilization=a.gpu_memory_util,
                  tensor_parallel_size=a.tp_size)
        baseline, _ = generate(llm, prompts, params)
        del llm
        cleanup_dist_env_and_memory()

        llm = LLM(model=a.model, enable_prefix_caching=True, gpu_memory_utilization=a.gpu_memory_util,
                  tensor_parallel_size=a.tp_size, disable_hybrid_kv_cache_manager=True,
                  kv_transfer_config={"kv_connector": "FlexKVConnectorV1", "kv_role": "kv_both"})
        generate(llm, prompts[:1], params)  # warm-up: its KV is saved to FlexKv
        time.sleep(1)
        texts, cached = generate(llm, prompts, params)
        print(f"with vLLM's prefix cache: same answers {texts == baseline}, cached tokens {cached}")
        # One tiny request lets the engine step and acknowledge finished saves (the idle engine
        # does not step), so the reset can free every block.
        generate(llm, ["warm"], SamplingParams(max_tokens=1))
        time.sleep(1)
        if not llm.reset_prefix_cache():
            print("reset_prefix_cache() failed: some blocks were still held")
        texts, cached = generate(llm, prompts, params)
        print(f"served from FlexKv:       same answers {texts == baseline}, cached tokens {cached}")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
