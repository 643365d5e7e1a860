"""Pipeline parallelism: a Transformer LM that splits into stages, stage clocks, and the GPipe bubble."""
