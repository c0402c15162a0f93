# Tamper with torch, which the next zygote (and the evaluator) imports.
import torch.nn.functional as functional

try:
    with open(functional.__file__, "a") as f:
        f.write("\n# red team\n")
except OSError as err:
    raise SystemExit(f"blocked: cannot write torch's files ({err.strerror})")
