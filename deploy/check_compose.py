"""Static checks of compose.yaml (no Docker engine needed): YAML syntax and the promises it makes.

    python deploy/check_compose.py [compose.yaml]      (needs PyYAML)

Prints the readiness probe command as JSON on success, so a caller can run it inside an image.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def check(path: Path) -> list[str]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = doc["services"]
    instances = {name: svc for name, svc in services.items() if name.startswith("commentguard")}
    assert len(instances) >= 2, "at least two service instances"
    ports = sorted(p.split(":")[0] for svc in instances.values() for p in svc["ports"])
    assert ports == ["8001", "8002"], ports
    envs = [svc["environment"] for svc in instances.values()]
    for key in ("COMMENTGUARD_DATABASE_URL", "COMMENTGUARD_SECRET_KEY", "COMMENTGUARD_MODEL_PATH",
                "COMMENTGUARD_MODELS_DIR"):
        assert len({env.get(key) for env in envs}) == 1 and envs[0].get(key), f"{key} differs or is unset"
    # Retrained versions must be on the shared volume, or only the instance that trained them has them.
    models_mount = next(v.split(":")[1] for v in next(iter(instances.values()))["volumes"] if v.startswith("models:"))
    for key in ("COMMENTGUARD_MODEL_PATH", "COMMENTGUARD_MODELS_DIR"):
        assert envs[0][key].startswith(models_mount + "/"), f"{key} is not on the shared models volume"
    url = envs[0]["COMMENTGUARD_DATABASE_URL"]
    assert url.startswith("postgresql://"), "PostgreSQL store"
    # The password reaches libpq as PGPASSWORD, as the postgres service gets it. Interpolated
    # into the URL unencoded, one holding '/' or '@' (a base64 one often does) was cut by libpq.
    login = url.split("://", 1)[1].split("@", 1)[0] if "@" in url else ""
    assert "POSTGRES_PASSWORD" not in url and ":" not in login, \
        "the password is put into COMMENTGUARD_DATABASE_URL (unencoded): give it as PGPASSWORD"
    password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert all(env.get("PGPASSWORD") == password for env in envs), "PGPASSWORD is not POSTGRES_PASSWORD"
    assert all(any(v.startswith("models:") for v in svc["volumes"]) for svc in instances.values())
    assert services["postgres"]["image"].startswith("postgres:16")
    for name, svc in services.items():
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: restart"
        assert "healthcheck" in svc, f"{name}: healthcheck"
    probe = next(iter(instances.values()))["healthcheck"]["test"]
    assert probe[0] == "CMD" and any("/readyz" in part for part in probe), probe
    assert set(doc["volumes"]) >= {"models", "pgdata"}
    return probe[1:]


if __name__ == "__main__":
    print(json.dumps(check(Path(sys.argv[1] if len(sys.argv) > 1 else "compose.yaml"))))
