"""`farm lint`: is a Dockerfile ready for a multi-architecture build?

The flow, one module each: `files` finds the Dockerfiles and what each is built for;
`dockerfile` parses one as BuildKit does; `names` reads platforms from file and image names;
`shell` spots OS-specific syntax; `switches` tells a step that picks by the architecture;
`rules` (FROM, OS syntax, the registry), `arch` (CPU architectures inside the build) and
`cases` (a `case` over the architecture) turn them into `findings`; `report` prints them.
"""
