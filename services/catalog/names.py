"""Display names of platforms and groups derived from their Auth0 roles."""


def derive_short_name(identifier: str, name: str, configured: dict[str, str]) -> str:
    if identifier in configured:
        return configured[identifier]
    words = [w for w in name.replace("-", " ").split() if w[:1].isalpha()]
    if len(words) >= 2:
        return "".join(w[0].upper() for w in words)
    return identifier.upper()
