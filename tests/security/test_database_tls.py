"""TLS to Postgres can be verified: DB_SSLMODE=verify-full with DB_SSLROOTCERT (the RDS
CA bundle in production) checks the server's certificate and its host name, so a
database impostor on the network path gets no connection and no password."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from db.engine import create_engine
from scripts.pg_cluster import TempCluster
from services.settings import load_settings
from tests.certificates import make_certificate


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[tuple[TempCluster, Path]]:
    """A private Postgres serving TLS with a certificate for "localhost"."""
    cluster = TempCluster()
    # Inside the cluster's own directory: the server's user may not enter the test's.
    cert, key = make_certificate(cluster.workdir, "server", host="localhost")
    cluster.give_to_server(cert, key)
    cluster.options = ("ssl=on", f"ssl_cert_file={cert}", f"ssl_key_file={key}")
    with cluster:
        yield cluster, cert


async def connects(host: str, port: int, **tls: str) -> bool:
    settings = load_settings(
        _env_file=None, db_host=f"{host}:{port}", db_user="postgres", db_name="postgres", **tls
    )
    engine = create_engine(settings.database_url, process="tests", connect_timeout_s=5)
    try:
        async with engine.connect() as connection:
            encrypted = await connection.scalar(
                sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
        return bool(encrypted)
    except (OSError, sa.exc.DBAPIError) as exc:
        if "certificate" in str(exc).lower() or "ssl" in type(exc).__name__.lower():
            return False
        raise
    finally:
        await engine.dispose()


async def test_verify_full_connects_to_the_real_server(tls_cluster):
    cluster, cert = tls_cluster
    assert await connects(
        "localhost", cluster.port, db_sslmode="verify-full", db_sslrootcert=str(cert)
    )


async def test_a_server_whose_certificate_another_ca_signed_is_refused(tls_cluster, tmp_path):
    cluster, _ = tls_cluster
    impostor_ca, _ = make_certificate(tmp_path, "other", host="localhost")
    assert not await connects(
        "localhost", cluster.port, db_sslmode="verify-full", db_sslrootcert=str(impostor_ca)
    )


async def test_verify_full_checks_the_host_name_too(tls_cluster):
    cluster, cert = tls_cluster
    # The certificate names "localhost", not 127.0.0.1.
    assert not await connects(
        "127.0.0.1", cluster.port, db_sslmode="verify-full", db_sslrootcert=str(cert)
    )
    assert await connects(
        "127.0.0.1", cluster.port, db_sslmode="verify-ca", db_sslrootcert=str(cert)
    )
