# A package, so its test modules (integration.test_build, ...) never clash with
# tests/unit's modules of the same file name.
