"""Counter-based random numbers (Philox) bit-exact with the Triton and CUDA kernels."""
