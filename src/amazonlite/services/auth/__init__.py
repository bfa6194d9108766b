"""auth: credentials, refresh-token families, signing keys; issues the access tokens the gateway verifies."""
