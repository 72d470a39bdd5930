"""Sign-up: the Auth0 user, the local user, default platforms, bundle requests, reCAPTCHA."""
