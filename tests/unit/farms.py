"""Small farm files that unit tests share."""

ONE_NODE = """
[builder]
name = "farm"
[[node]]
name = "node1"
endpoint = "unix:///var/run/docker.sock"
platforms = ["linux/amd64"]
"""
