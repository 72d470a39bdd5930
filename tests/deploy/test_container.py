"""The image and the local stack, checked without Docker: what the Dockerfile builds
and runs, what the build context lets in, and the compose file's shape."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.entrypoint import ROLES
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def allowed_by_dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line[1:] for line in lines if line.startswith("!")]


def final_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[-1]


class TestDockerfile:
    def test_multi_stage_with_a_locked_production_only_venv(self):
        assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) >= 2
        assert "uv sync --locked --no-dev --no-install-project" in DOCKERFILE
        assert "COPY --from=build /app/.venv /app/.venv" in final_stage()

    def test_runs_as_an_unprivileged_user_with_a_healthcheck_and_the_entrypoint(self):
        runtime = final_stage()
        user = re.search(r"^USER (\S+)", runtime, re.MULTILINE)
        assert user is not None
        assert user.group(1).split(":")[0] not in ("root", "0")
        assert "HEALTHCHECK" in runtime
        assert "/health/live" in runtime
        assert 'ENTRYPOINT ["python", "-m", "scripts.entrypoint"]' in runtime
        assert re.search(r'^CMD \["api"\]', runtime, re.MULTILINE)

    def test_every_copied_path_exists_and_none_is_tests_or_dev_tooling(self):
        sources = []
        for line in final_stage().splitlines():
            if line.startswith("COPY ") and "--from=" not in line:
                sources += line.split()[1:-1]
        assert sources
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not source.startswith(("tests", ".venv", ".env", "scripts/bench"))

    def test_the_build_context_lets_in_only_what_the_image_copies(self):
        allowed = allowed_by_dockerignore()
        assert (ROOT / ".dockerignore").read_text().splitlines()[1] == "*"
        for path in allowed:
            assert not path.startswith(("tests", ".env", ".venv", "var"))
        copied = [
            s
            for line in DOCKERFILE.splitlines()
            if line.startswith("COPY ") and "--from" not in line
            for s in line.split()[1:-1]
        ]
        for source in copied:
            assert any(source == a or source.startswith(a) for a in allowed), source

    def test_everything_the_three_roles_import_is_in_the_image(self):
        """Import what api, scheduler and migrate load, and check each repository module
        is inside the .dockerignore allow-list (else the container fails at start)."""
        probe = (
            "import json, sys; import main, run_scheduler, scripts.entrypoint, routers.db_admin, "
            "db.migrations, scripts.auth0_emulator.__main__, scripts.import_legacy; main.create_app(); "
            "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))"
        )
        output = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin", "DB_URL": "sqlite://", "ENABLE_ADMIN_DASHBOARD": "true"},
        ).stdout
        files = [Path(f) for f in json.loads(output.splitlines()[-1]) if f]
        ours = [
            f.relative_to(ROOT).as_posix()
            for f in files
            if ROOT in f.parents and ".venv" not in f.parts
        ]
        allowed = allowed_by_dockerignore()
        missing = [f for f in ours if not any(f == a or f.startswith(a) for a in allowed)]
        assert ours
        assert missing == []


APP_SERVICES = ("migrate", "api", "scheduler")


class TestCompose:
    def test_the_services_and_their_order(self):
        services = COMPOSE["services"]
        assert set(services) == {"postgres", "migrate", "api", "scheduler", "auth0-emulator"}
        assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        for name in ("api", "scheduler"):
            assert services[name]["depends_on"] == {
                "migrate": {"condition": "service_completed_successfully"}
            }
        assert services["migrate"]["restart"] == "no"
        assert services["scheduler"]["deploy"]["replicas"] == 1
        assert services["auth0-emulator"]["profiles"] == ["emulator"]
        assert "healthcheck" in services["postgres"]

    @pytest.mark.parametrize("name", APP_SERVICES)
    def test_app_services_run_one_image_in_a_known_role(self, name: str):
        service = COMPOSE["services"][name]
        assert service["image"] == "aai-backend:local"
        assert service["build"] == {"context": "..", "dockerfile": "Dockerfile"}
        assert service["command"][0] in ROLES
        assert service["env_file"] == [{"path": "../.env", "required": False}]

    def test_the_environment_names_real_settings(self):
        fields = {name.upper() for name in Settings.model_fields}
        env = COMPOSE["services"]["api"]["environment"]
        unknown = set(env) - fields - {"DB_WAIT_TIMEOUT_S"}
        assert unknown == set()

    def test_the_emulator_is_reachable_under_the_name_the_api_uses(self):
        emulator = COMPOSE["services"]["auth0-emulator"]
        api_domain = COMPOSE["services"]["api"]["environment"]["AUTH0_DOMAIN"]
        assert "--public-url=http://auth0-emulator:9010" in emulator["command"]
        assert api_domain.endswith("http://auth0-emulator:9010}")
        assert "--allow-remote" in emulator["command"]
