"""`farm up`, `plan`, `status`, `down`: converge Docker contexts and one buildx builder to the file.

    observe (reads) → plan (pure) → render → apply (writes) → observe again → the plan is empty

Docker is read only in `observe` and changed only in `apply` (through `buildx` for the verbs
python-on-whales lacks); both make their clients and argv through `buildkit_farm.docker`.
"""
