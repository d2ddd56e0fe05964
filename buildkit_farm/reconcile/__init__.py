"""`farm up`, `plan`, `status`, `down`: converge Docker contexts and one buildx builder to the file.

    observe (reads) → plan (pure) → render → apply (writes) → observe again → the plan is empty

Docker is read only in `observe` and changed only in `apply` (through `buildx`'s verbs);
every process both start goes through the door, `buildkit_farm.docker`.
"""
