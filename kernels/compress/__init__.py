"""Model compression: affine quantization by hand, torchao's PT2E and QAT flows, pruning helpers."""
