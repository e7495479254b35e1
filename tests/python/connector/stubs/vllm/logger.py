"""vllm.logger.init_logger: connectors commonly log through it (vLLM's own FlexKV wrapper does)."""

import logging


def init_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
