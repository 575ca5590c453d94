"""The installed import package is ``bhhub``; the repository keeps its folders.

``hub/`` installs as ``bhhub``, and ``plugins/``, ``connectors/`` and ``mappings/`` as
``bhhub.plugins``, ``bhhub.connectors`` and ``bhhub.mappings``: one top-level name, so neither a
vendor's package nor a practice's own ``plugins`` module can collide with bhhub's. Everything
else about the distribution is in pyproject.toml; this file only lists the packages, which
setuptools' ``packages.find`` cannot name under a different top-level package.
"""

from setuptools import find_packages, setup

FOLDERS = {"bhhub": "hub", "bhhub.plugins": "plugins", "bhhub.connectors": "connectors",
           "bhhub.mappings": "mappings"}


def packages() -> list[str]:
    found = []
    for name, folder in FOLDERS.items():
        found.append(name)
        found.extend(f"{name}.{sub}" for sub in find_packages(where=folder))
    return found


setup(packages=packages(), package_dir=FOLDERS)
