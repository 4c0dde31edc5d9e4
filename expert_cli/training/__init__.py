"""Training: the only place that imports transformers/peft/trl/datasets for training."""

import logging

# transformers' trainer imports bitsandbytes, whose CPU backend asks the hub for a 4-bit kernel on AVX512-BF16
# machines and, offline, logs two warnings about a kernel LoRA training never uses. Only those two loggers.
for _name in ("bitsandbytes.backends.cpu.ops", "kernels._internals.hf_hub"):
    logging.getLogger(_name).setLevel(logging.ERROR)
