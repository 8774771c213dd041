"""The conda file and the pip requirements pin the same versions."""
import yaml

from lib.paths import REPO_ROOT


def test_environment_yml_mirrors_requirements():
    requirements = {line.strip() for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert set(pip_section) == requirements
    assert all("==" in line for line in requirements)
