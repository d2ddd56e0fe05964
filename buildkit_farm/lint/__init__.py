"""`farm lint`: is a Dockerfile ready for a multi-architecture build?

The flow, one module each: `files` finds the Dockerfiles and what each is built for;
`dockerfile` parses one as BuildKit does; `names` reads platforms from file and image names;
`shell` spots OS-specific syntax; `rules` (FROM, OS syntax, the registry) and `arch` (CPU
architectures inside the build) turn them into `findings`; `report` prints them.
"""
