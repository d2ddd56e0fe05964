"""`farm lint`: is a Dockerfile ready for a multi-architecture build?"""
