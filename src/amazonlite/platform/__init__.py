"""The kernel: settings, database and unit of work, messaging, HTTP, security and observability.

It knows no domain: services build on it, it imports none of them.
"""
