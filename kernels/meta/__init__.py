"""Meta-learning: MAML (Finn, Abbeel & Levine, ICML 2017) on the sinusoid benchmark, with torch.func."""
