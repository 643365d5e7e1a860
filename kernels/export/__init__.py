"""Model export and inference runtimes: ONNX Runtime, ExecuTorch (.pte), torch.export graphs."""
