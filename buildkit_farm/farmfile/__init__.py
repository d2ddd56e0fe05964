"""The farm file: its model, cross-field rules, platform names, image references and `init`'s starter.

Loading is the boundary: past `model.load_config`, nothing reads the TOML again.
"""
