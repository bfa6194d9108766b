"""users: profiles (created from `user.registered.v1`), addresses and preferences."""
