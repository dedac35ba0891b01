"""``payerpolicy new-plugin``: write a new, pip-installable payer plugin distribution.

:func:`new_plugin` writes ``payerpolicy-NAME/`` with:

* ``pyproject.toml``: setuptools, a dependency on payerpolicy, the ``payerpolicy`` entry point
  ``NAME = "payerpolicy_NAME.plugin"`` and the policy file as package data;
* ``payerpolicy_NAME/plugin.py``: a ``payerpolicy_payers`` hook registering payer ``NAME``;
* ``payerpolicy_NAME/NAME.toml``: a policy that ``extends`` a builtin payer, with a commented
  example override;
* ``tests/cases/example_visit.toml``: one case file whose expected lines were computed by evaluating
  the encounter with the generated policy, so it passes as generated;
* ``examples/visit.json``: the same encounter as an encounter file, for ``payerpolicy compare`` and
  ``explain`` (the README's commands);
* ``tests/test_cases.py`` (using :mod:`payerpolicy.testing`) and a ``README.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from .._version import __version__
from ..evaluation.engine import Engine
from ..evaluation.errors import PayerPolicyError
from ..evaluation.hookspecs import hookimpl
from ..evaluation.manager import PluginHost
from ..evaluation.model import Payer
from .testing import _actual, check_case, load_cases, run_case

__all__ = ["PLUGIN_ID", "SAMPLE_ENCOUNTER", "new_plugin"]

#: What a new payer id (and so the plugin name) must look like.
PLUGIN_ID = re.compile(r"^[a-z][a-z0-9_]*$")

#: The encounter of the generated case file: CMT, soft tissue in another region, exercise.
SAMPLE_ENCOUNTER: Mapping[str, Any] = {
    "date_of_service": dt.date(2025, 5, 6),
    "provider": {"type": "DC"},
    "diagnoses": ["M99.01", "M54.2", "M25.511"],
    "procedures": [{"code": "98940", "regions": ["cervical"], "diagnosis_pointers": [1, 2]}],
    "services": [
        {
            "technique": "myofascial_release",
            "intent": ["range_of_motion"],
            "minutes": 15,
            "regions": ["upper_extremity"],
            "diagnosis_pointers": [3],
        },
        {
            "technique": "therapeutic_exercise",
            "intent": ["function"],
            "minutes": 10,
            "regions": ["cervical"],
            "diagnosis_pointers": [2],
        },
    ],
    "documentation": [
        "rationale",
        "goals",
        "functional_goal",
        "objective_measures",
        "progress",
        "regions",
        "technique",
        "patient_response",
        "time_in_out",
        "signed",
        "plan_of_care",
    ],
}


def _plugin_object(payer: Payer) -> object:
    class Plugin:
        """The payer being scaffolded, registered from its generated file."""

        @hookimpl
        def payerpolicy_payers(self) -> list[Payer]:
            """Register the new payer."""
            return [payer]

    return Plugin()


def _title(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("_"))


def new_plugin(name: str, extends: str = "commercial", directory: str | Path = ".") -> Path:
    """Write the distribution ``payerpolicy-NAME`` under ``directory`` and return its path.

    Raises :class:`PayerPolicyError` (CLI exit status 2) for an invalid name, an ``extends`` that is
    not an installed payer, a name that an installed plugin already serves, or an existing target.
    """
    if not PLUGIN_ID.match(name):
        raise PayerPolicyError(
            f"new-plugin: {name!r} is not a valid payer id; expected lower case letters, digits and _ (like 'regional_blue')"
        )
    host = PluginHost()
    if extends not in host.payers:
        raise PayerPolicyError(
            f"new-plugin: --extends {extends!r} is not an installed payer; installed: {', '.join(host.payers)}"
        )
    if name in host.payers:
        raise PayerPolicyError(
            f"new-plugin: payer id {name!r} is already served by plugin {host.payers[name].plugin!r}"
        )
    target = Path(directory) / f"payerpolicy-{name}"
    if target.exists():
        raise PayerPolicyError(f"new-plugin: {target} already exists; not overwriting it")

    package = f"payerpolicy_{name}"
    title = _title(name)
    base = host.payers[extends]
    files = {
        "pyproject.toml": _pyproject(name, package),
        "README.md": _readme(name, package, extends),
        ".gitignore": "build/\ndist/\n*.egg-info/\n__pycache__/\n.pytest_cache/\n",
        f"{package}/__init__.py": f'"""payerpolicy plugin for the {title} payer (payer id ``{name}``)."""\n',
        f"{package}/plugin.py": _plugin_module(name, package, title, extends),
        f"{package}/{name}.toml": _policy(name, title, extends, base.name),
        "tests/test_cases.py": _test_module(name),
        "examples/visit.json": json.dumps(SAMPLE_ENCOUNTER, indent=2, default=dt.date.isoformat) + "\n",
    }
    target.mkdir(parents=True)
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")

    case_file = target / "tests" / "cases" / "example_visit.toml"
    case_file.parent.mkdir(parents=True)
    payer = Payer(id=name, name=title, policy=str(target / package / f"{name}.toml"))
    engine = Engine(PluginHost([_plugin_object(payer)]))
    case_file.write_text(_case_file(name, extends, engine, case_file), "utf-8")
    problems = [p for case in load_cases(case_file) for p in check_case(case, engine)]
    if problems:  # pragma: no cover - the expectations were computed by the same engine
        raise AssertionError("generated case does not pass:\n" + "\n".join(problems))
    return target


def _case_file(name: str, extends: str, engine: Engine, file: Path) -> str:
    data: dict[str, Any] = {
        "title": f"A chiropractic visit: CMT, soft tissue in another region, exercise (as {extends!r} bills it)",
        "payer": name,
        "encounter": dict(SAMPLE_ENCOUNTER),
        "expect": {"lines": [], "findings": []},
    }
    file.write_text(tomli_w.dumps(data), "utf-8")
    (case,) = load_cases(file)
    lines, findings = _actual(run_case(case, engine))
    data["expect"] = {"lines": lines, "findings": findings}
    header = (
        "# A case file (see payerpolicy.testing): an encounter and the exact lines and finding codes the payer\n"
        f"# must give. Generated by `payerpolicy new-plugin` from what the {extends!r} policy gives today;\n"
        "# change [expect] when you change the policy on purpose.\n"
    )
    return header + tomli_w.dumps(data)


def _pyproject(name: str, package: str) -> str:
    return textwrap.dedent(
        f"""\
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "payerpolicy-{name.replace("_", "-")}"
        version = "0.1.0"
        description = "payerpolicy plugin: the {_title(name)} payer."
        readme = "README.md"
        requires-python = ">=3.11"
        dependencies = ["payerpolicy>={__version__}"]

        [project.optional-dependencies]
        test = ["pytest>=8"]

        # The entry point is how payerpolicy finds the plugin: name = "module with the hooks".
        [project.entry-points.payerpolicy]
        {name} = "{package}.plugin"

        [tool.setuptools]
        packages = ["{package}"]

        [tool.setuptools.package-data]
        "{package}" = ["*.toml"]

        [tool.pytest.ini_options]
        testpaths = ["tests"]
        """
    )


def _plugin_module(name: str, package: str, title: str, extends: str) -> str:
    return textwrap.dedent(
        f'''\
        """The {title} payer. Its behaviour is policy data: see ``{name}.toml``.

        Add hook implementations here (see payerpolicy's docs/hooks.md) only for what the policy file
        cannot say.
        """

        from __future__ import annotations

        from payerpolicy import Payer, hookimpl

        __all__ = ["payerpolicy_payers"]


        @hookimpl
        def payerpolicy_payers() -> list[Payer]:
            """Register the ``{name}`` payer and its policy file."""
            return [
                Payer(
                    id="{name}",
                    name="{title}",
                    policy=("{package}", "{name}.toml"),
                    description="Starts from the {extends!r} payer's policy.",
                )
            ]
        '''
    )


def _policy(name: str, title: str, extends: str, base_name: str) -> str:
    return textwrap.dedent(
        f"""\
        # The {title} payer: starts from {base_name} ({extends!r}) and overrides what differs.
        # Format: payerpolicy docs/policy-format.md. Check it with `payerpolicy policy check {name}.toml`.
        schema_version = 1
        extends = "{extends}"

        [payer]
        id = "{name}"
        name = "{title}"
        policy_version = "{dt.date.today():%Y.%m}"

        # Example override: uncomment, and cite the document behind it.
        #
        # [settings]
        # distinct_modifier_region = "XS"
        #
        # [settings.basis.distinct_modifier_region]
        # rule = "{name.upper().replace("_", "")}-01"
        # source = "{title} provider manual, section ... (modifier XS for a separate structure)"
        #
        # [[rules]]
        # id = "{name.upper().replace("_", "")}-02"
        # kind = "per_visit_limit"
        # source = "{title} provider manual, section ..."
        # confidence = "H"
        # max = 4
        # count_basis = "units"
        """
    )


def _test_module(name: str) -> str:
    return textwrap.dedent(
        f'''\
        """The plugin's case files, run with payerpolicy.testing against the installed plugins."""

        from pathlib import Path

        import pytest
        from payerpolicy import Engine, PluginHost
        from payerpolicy.testing import assert_case, case_ids, load_cases

        CASES = load_cases(Path(__file__).parent / "cases")


        @pytest.fixture(scope="module")
        def engine() -> Engine:
            # strict: a plugin that fails to load stops the run instead of being skipped.
            return Engine(PluginHost(strict=True))


        def test_payer_is_installed(engine: Engine) -> None:
            assert "{name}" in engine.host.payers
            engine.host.policy("{name}")  # loads and validates the policy file


        @pytest.mark.parametrize("case", CASES, ids=case_ids(CASES))
        def test_case(case, engine: Engine) -> None:
            assert_case(case, engine)
        '''
    )


def _readme(name: str, package: str, extends: str) -> str:
    return textwrap.dedent(
        f"""\
        # payerpolicy-{name.replace("_", "-")}

        A [payerpolicy](https://pypi.org/project/payerpolicy/) plugin: the `{name}` payer, starting
        from the `{extends}` payer's policy.

        * `{package}/{name}.toml`: the policy (settings and rules, each with its source).
        * `{package}/plugin.py`: registers the payer (entry point `{name}` in the `payerpolicy` group).
        * `tests/cases/*.toml`: case files, an encounter and the exact claim lines expected.
        * `examples/visit.json`: the case file's encounter as an encounter file.

        payerpolicy {__version__} or later must be installed first, in the same environment: from
        PyPI once released, or from a clone (`pip install -e /path/to/payerpolicy`) or a wheel
        (`pip install payerpolicy-{__version__}-py3-none-any.whl`). Then:

        ```sh
        pip install -e '.[test]'
        pytest
        payerpolicy plugins                       # lists {name}
        payerpolicy policy check {package}/{name}.toml
        payerpolicy compare examples/visit.json --payers {extends},{name}
        payerpolicy explain examples/visit.json --payer {name}
        ```
        """
    )
