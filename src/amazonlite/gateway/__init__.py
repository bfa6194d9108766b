"""The gateway: the single public entry of the platform.

It owns no data. It verifies a caller's access token once, mints the internal token the owning
service accepts, and routes `/api/v1/...` by path prefix to that service, in-process (embedded)
or over HTTP (distributed).
"""
