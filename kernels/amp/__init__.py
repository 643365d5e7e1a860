"""Mixed precision by hand: the cast policy, its probe against torch.autocast, dynamic loss scaling."""
