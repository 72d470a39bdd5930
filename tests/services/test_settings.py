import pytest

from services.settings import (
    DEV_JWT_SECRET,
    ConfigError,
    Settings,
    load_settings,
)

SAFE_PRODUCTION = {
    "environment": "production",
    "db_url": "postgresql://aai:pw@db.internal:5432/aai",
    "auth0_domain": "tenant.au.auth0.com",
    "auth0_audience": "https://api.portal.example",
    "auth0_management_id": "mgmt-client",
    "auth0_management_secret": "a-real-management-secret",
    "auth0_password_client_id": "password-client",
    "auth0_password_client_secret": "a-real-password-client-secret",
    "jwt_secret_key": "x" * 48,
    "recaptcha_secret": "recaptcha",
    "auth0_action_token_secret": "a-real-action-token-secret-of-32-bytes-or-more",
    "email_backend": "ses",
    "ses_region": "ap-southeast-2",
}


def settings(**overrides: object) -> Settings:
    return load_settings(_env_file=None, **overrides)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ENVIRONMENT",
        "DB_URL",
        "DB_HOST",
        "AUTH0_DOMAIN",
        "ADMIN_ROLES",
        "CORS_ALLOWED_ORIGINS",
    ):
        monkeypatch.delenv(name, raising=False)


class TestDefaults:
    def test_nothing_set_means_dev_on_a_local_sqlite_file(self):
        config = settings()
        assert config.environment == "dev"
        assert config.database_url.drivername == "sqlite+aiosqlite"
        assert config.database_url.database == "./aai-backend.db"
        assert config.auth0_base_url == "http://127.0.0.1:9010"

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("prod", "production"),
            ("Production", "production"),
            ("development", "dev"),
            ("staging", "staging"),
        ],
    )
    def test_environment_aliases(self, given: str, expected: str):
        overrides = dict(SAFE_PRODUCTION) if expected == "production" else {}
        overrides["environment"] = given
        assert settings(**overrides).environment == expected

    def test_unknown_environment_is_named_in_the_error(self):
        with pytest.raises(ConfigError, match="ENVIRONMENT"):
            settings(environment="qa")


class TestAuth0Domain:
    def test_bare_host_means_https(self):
        assert (
            settings(auth0_domain="tenant.au.auth0.com").auth0_base_url
            == "https://tenant.au.auth0.com"
        )

    def test_value_with_scheme_is_used_as_is(self):
        assert (
            settings(auth0_domain="http://127.0.0.1:9010/").auth0_base_url
            == "http://127.0.0.1:9010"
        )

    def test_issuers_cover_tenant_custom_domain_and_explicit_issuer(self):
        config = settings(
            auth0_domain="tenant.au.auth0.com",
            auth0_custom_domain="login.example.org",
            auth0_issuer="https://issuer.example.org/",
        )
        assert config.auth0_issuers == [
            "https://tenant.au.auth0.com/",
            "https://login.example.org/",
            "https://issuer.example.org/",
        ]


class TestDatabaseUrl:
    @pytest.mark.parametrize(
        ("given", "driver"),
        [
            ("postgresql://u@h/db", "postgresql+asyncpg"),
            ("postgres://u@h/db", "postgresql+asyncpg"),
            ("postgresql+psycopg://u@h/db", "postgresql+asyncpg"),
            ("sqlite:///./x.db", "sqlite+aiosqlite"),
            ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
        ],
    )
    def test_plain_urls_map_to_async_drivers(self, given: str, driver: str):
        assert settings(db_url=given).database_url.drivername == driver

    def test_db_host_wins_over_db_url(self):
        config = settings(
            db_url="sqlite:///./ignored.db",
            db_host="db.internal:6543",
            db_name="aai",
            db_user="svc",
            db_password="p@ss/word",
        )
        url = config.database_url
        assert (url.drivername, url.host, url.port, url.database, url.username) == (
            "postgresql+asyncpg",
            "db.internal",
            6543,
            "aai",
            "svc",
        )
        assert url.password == "p@ss/word"

    def test_db_host_without_port_uses_db_port(self):
        assert settings(db_host="db.internal", db_port=5555).database_url.port == 5555


class TestListsFromEnvironment:
    def test_admin_roles_json_and_cors_comma_list(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setenv("ADMIN_ROLES", '["Admin", "GalaxyAdmin"]')
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
        config = settings()
        assert config.admin_roles == ["Admin", "GalaxyAdmin"]
        assert config.cors_allowed_origins == ["https://a.example", "https://b.example"]

    def test_environment_variables_are_read(self, monkeypatch: pytest.MonkeyPatch):
        monkeypatch.setenv("ENVIRONMENT", "prod")
        for key, value in SAFE_PRODUCTION.items():
            if key != "environment":
                monkeypatch.setenv(key.upper(), value)
        assert settings().is_production


class TestProductionRefusesUnsafeConfig:
    def test_a_safe_production_config_loads(self):
        config = settings(**SAFE_PRODUCTION)
        assert config.is_production
        assert config.database_url.drivername == "postgresql+asyncpg"

    @pytest.mark.parametrize(
        ("override", "variable"),
        [
            ({"db_url": "sqlite:///./prod.db"}, "DB_URL"),
            ({"jwt_secret_key": DEV_JWT_SECRET}, "JWT_SECRET_KEY"),
            ({"jwt_secret_key": ""}, "JWT_SECRET_KEY"),
            ({"jwt_secret_key": "short"}, "JWT_SECRET_KEY"),
            ({"auth0_management_secret": ""}, "AUTH0_MANAGEMENT_SECRET"),
            ({"recaptcha_secret": ""}, "RECAPTCHA_SECRET"),
            ({"auth0_domain": "http://127.0.0.1:9010"}, "AUTH0_DOMAIN"),
            ({"auth0_custom_domain": "http://login.example.org"}, "AUTH0_CUSTOM_DOMAIN"),
            ({"auth0_audience": "https://api.aai-backend.local"}, "AUTH0_AUDIENCE"),
            ({"auth0_action_token_secret": "31-bytes-is-one-byte-too-short"}, "ACTION_TOKEN"),
            ({"cors_allowed_origins": "*"}, "CORS_ALLOWED_ORIGINS"),
            ({"cors_allowed_origins": "http://portal.example"}, "CORS_ALLOWED_ORIGINS"),
            ({"cors_allowed_origins": "https://localhost:4200"}, "CORS_ALLOWED_ORIGINS"),
            ({"recaptcha_verify_url": "https://evil.example/siteverify"}, "RECAPTCHA_VERIFY_URL"),
            ({"recaptcha_verify_url": "http://www.google.com/x"}, "RECAPTCHA_VERIFY_URL"),
            ({"enable_admin_dashboard": "true"}, "ADMIN_CLIENT_ID"),
            ({"forwarded_allow_ips": "*"}, "FORWARDED_ALLOW_IPS"),
            ({"auth0_password_client_id": "mgmt-client"}, "AUTH0_PASSWORD_CLIENT_ID"),
            ({"auth0_password_client_secret": "dev-password-secret"}, "PASSWORD_CLIENT_SECRET"),
            # The custom (login) domain as AUTH0_DOMAIN: Auth0 refuses the management token.
            ({"auth0_domain": "login.aai.biocommons.org.au"}, "AUTH0_DOMAIN: login.aai"),
            (
                {
                    "auth0_domain": "https://login.example.org",
                    "auth0_custom_domain": "login.example.org",
                },
                "AUTH0_DOMAIN: equals AUTH0_CUSTOM_DOMAIN",
            ),
        ],
    )
    def test_refusal_names_the_variable(self, override: dict[str, str], variable: str):
        with pytest.raises(ConfigError, match=variable):
            settings(**{**SAFE_PRODUCTION, **override})

    def test_a_canonical_domain_with_a_custom_login_domain_is_accepted(self):
        config = settings(
            **{**SAFE_PRODUCTION, "auth0_custom_domain": "login.aai.biocommons.org.au"}
        )
        assert config.auth0_base_url == "https://tenant.au.auth0.com"
        assert config.auth0_login_url == "https://login.aai.biocommons.org.au"

    def test_production_defaults_are_safe(self):
        config = settings(**SAFE_PRODUCTION)
        # The portal may call it; nothing local may; docs are not published.
        assert config.cors_origins == ["https://portal.access.services.biocommons.org.au"]
        assert config.api_docs is False
        assert config.forwarded_allow_ips == ["127.0.0.1"]

    def test_forwarded_allow_ips_must_be_addresses_or_networks(self):
        assert settings(forwarded_allow_ips="10.0.0.0/16,127.0.0.1").forwarded_allow_ips == [
            "10.0.0.0/16",
            "127.0.0.1",
        ]
        with pytest.raises(ConfigError, match="FORWARDED_ALLOW_IPS"):
            settings(forwarded_allow_ips="the-load-balancer")

    def test_the_same_values_are_accepted_in_dev(self):
        config = settings(db_url="sqlite:///./dev.db", auth0_domain="http://127.0.0.1:9010")
        assert config.database_url.get_backend_name() == "sqlite"


def test_each_purpose_gets_its_own_key_derived_from_the_secret():
    config = settings(jwt_secret_key="s" * 40)
    keys = {p: config.derived_key(p) for p in ("session", "csrf", "email-code")}
    assert len(set(keys.values())) == 3
    assert "s" * 40 not in keys.values()
    # Stable for a secret (sessions survive a restart), different for another secret.
    assert config.derived_key("session") == settings(jwt_secret_key="s" * 40).derived_key("session")
    assert keys["session"] != settings(jwt_secret_key="t" * 40).derived_key("session")


class TestOldDeploymentsSettings:
    """Names the running backend's deployments set must still start this one."""

    def test_sbp_allowed_email_domains_as_json_or_a_comma_list(
        self, monkeypatch: pytest.MonkeyPatch
    ):
        monkeypatch.setenv("SBP_ALLOWED_EMAIL_DOMAINS", '["uq.edu.au", "csiro.au"]')
        assert settings().sbp_allowed_email_domains == ["uq.edu.au", "csiro.au"]
        monkeypatch.setenv("SBP_ALLOWED_EMAIL_DOMAINS", "uq.edu.au, csiro.au")
        assert settings().sbp_allowed_email_domains == ["uq.edu.au", "csiro.au"]

    def test_auth0_algorithms_is_accepted_as_rs256_and_nothing_else(
        self, monkeypatch: pytest.MonkeyPatch
    ):
        monkeypatch.setenv("AUTH0_ALGORITHMS", '["RS256"]')
        assert settings().auth0_algorithms == ["RS256"]
        monkeypatch.setenv("AUTH0_ALGORITHMS", '["RS256", "HS256"]')
        with pytest.raises(ConfigError, match="only RS256"):
            settings()
