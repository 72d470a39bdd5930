"""Who the caller is and what they may do: access tokens, the role scheme, admin scope, Auth0 Action tokens."""
