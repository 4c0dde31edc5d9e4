"""Adapter methods applied unmerged on a shared base model, one module per method (as PEFT's ``tuners/``).

- :mod:`.linear`: the wrapper every targeted Linear layer gets, the shared routing plan and the slot base
  classes; :mod:`.files`: the adapter folder (config, tensors, grouping them by module).
- :mod:`.lora` (LoRA, rsLoRA, DoRA), :mod:`.adalora`, :mod:`.lokr`, :mod:`.ia3`, :mod:`.prompt_tuning`: each
  reads its tensors into its own slot type and defines that slot's forward.
- :mod:`.registry`: the methods by PEFT type and :func:`~.registry.read_adapter`, which the pool uses.
"""
