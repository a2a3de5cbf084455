"""doxops: render, validate, diff and prove the dox-asdlc GitOps repository.

The package holds all logic; ``tasks.py`` and ``./dox`` only call into it.
"""
