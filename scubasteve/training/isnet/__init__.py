"""Fine-tuning IS-Net on box crops (`scubasteve train isnet`, and learning from a project's
accepted masks): `data.py` makes the crops as the engine does, `trainer.py` runs the loop,
`run.py` splits, measures before and after, and installs the result."""
