"""The contract a payer-portal plugin (eligibility from a payer's API) must keep.

In a plugin's tests::

    class TestContract(PayerPortalPluginContract):
        plugin, entry_point = my_plugin, "my_plugin"

The checks:

1. ``check_implements_eligibility``: the plugin registers, implements only hooks bhhub
   specifies, and implements ``bhhub_check_eligibility``.
2. ``check_not_my_payer``: asked about a payer it does not serve, the hook returns ``None`` (so
   the next plugin is asked) and reaches no network: which payers a plugin serves is data.
3. ``check_answers`` (when the test supplies a served request and makes the portal answer
   offline, e.g. with a fake transport or ``responses``): the hook returns a
   ``bhhub.eligibility.benefits.EligibilityResponse`` (the record ``read_271`` makes) for the
   payer asked about, with benefits for each service type asked about or rejections saying
   why the payer would not answer, and a mental-health summary that can be made and written
   as JSON; reaching no network.
4. ``check_no_network_at_import``, ``check_mapping_file``, ``check_entry_point`` from
   ``bhhub.testing.common``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar

from bhhub.eligibility.benefits import EligibilityResponse
from bhhub.model import Address, Coverage, Patient, Payer, PersonName
from bhhub.testing.common import (
    UNDER_TEST, ContractFailure, check_calls_need_no_network, check_entry_point, check_mapping_file,
    check_no_network_at_import, check_registers_cleanly, fail, module_name_of, plugin_label, run_all,
)

__all__ = ["PayerPortalPluginContract", "check_plugin", "check_implements_eligibility", "check_not_my_payer",
           "check_answers", "sample_request"]

NOBODYS_PAYER = "ZZ-NO-SUCH-PAYER"


def sample_request(payer_id: str = NOBODYS_PAYER, payer_name: str = "NO SUCH PAYER") -> dict[str, Any]:
    """Keyword arguments for ``bhhub_check_eligibility`` about an invented patient and payer."""
    patient = Patient(name=PersonName("Testpatient", "Alpha"), birth_date=date(1985, 3, 14), gender="F",
                      address=Address("12 Elm St", "Springfield", "IL", "62704"), key="contract:patient:1")
    coverage = Coverage(order=1, payer=Payer(payer_id, payer_name), member_id="CONTRACT0001")
    return {"patient": patient, "coverage": coverage, "service_date": date(2026, 11, 2), "service_types": ("MH",)}


def _eligibility_impl(plugin: object):
    host = check_registers_cleanly(plugin)
    impls = [i for i in host.manager.hook.bhhub_check_eligibility.get_hookimpls() if i.plugin_name == UNDER_TEST]
    if not impls:
        raise fail(f"{plugin_label(plugin)} does not implement bhhub_check_eligibility",
                   "a payer-portal plugin answers eligibility questions for the payers it serves")
    return impls[0]


def check_implements_eligibility(plugin: object) -> None:
    """Check 1."""
    _eligibility_impl(plugin)


def _call(impl, request: dict[str, Any]) -> Any:
    return impl.function(*[request[name] for name in impl.argnames])


def check_not_my_payer(plugin: object) -> None:
    """Check 2: ``None`` for a payer the plugin does not serve, without the network."""
    impl = _eligibility_impl(plugin)
    answer = check_calls_need_no_network(lambda: _call(impl, sample_request()), "bhhub_check_eligibility")
    if answer is not None:
        raise fail(f"bhhub_check_eligibility answered for payer {NOBODYS_PAYER!r}, which no plugin serves",
                   "return None unless coverage.payer.payer_id is one of yours")


def check_answers(plugin: object, request: dict[str, Any]) -> EligibilityResponse:
    """Check 3: an ``EligibilityResponse`` for the payer asked about, with benefits for each
    requested service type or rejections; returns it."""
    impl = _eligibility_impl(plugin)
    answer = check_calls_need_no_network(lambda: _call(impl, request), "bhhub_check_eligibility")
    if not isinstance(answer, EligibilityResponse):
        raise fail(f"bhhub_check_eligibility returned {type(answer).__name__} for a payer it serves, "
                   "not an EligibilityResponse",
                   "build a bhhub.eligibility.benefits.EligibilityResponse (the record read_271 makes) from the answer")
    payer_id = request["coverage"].payer.payer_id
    if answer.payer_id != payer_id:
        raise fail(f"the answer is for payer {answer.payer_id!r}, not {payer_id!r} which was asked about",
                   "set payer_id to coverage.payer.payer_id")
    if not answer.rejections:
        missing = [t for t in request["service_types"] if t not in answer.benefits]
        if missing:
            raise fail(f"the answer has no benefits for service type(s) {', '.join(missing)} and no rejection",
                       "answer each service type asked about, or give rejections saying why the payer did not")
    try:
        answer.mental_health_summary()
        answer.to_json()
    except Exception as exc:  # noqa: BLE001 - the point of the check
        raise fail(f"the answer cannot be summarised or written as JSON: {type(exc).__name__}: {exc}",
                   "build benefits from BenefitEntry (bhhub.eligibility.benefit_entries) and ServiceBenefits "
                   "(bhhub.eligibility.service_benefits) records") from None
    return answer


def check_plugin(plugin: object, *, served_request: dict[str, Any] | None = None, entry_point: str | None = None,
                 check_import: bool = True) -> dict[str, Any]:
    """Run every check in this module; raise one ``ContractFailure`` listing every failure."""
    checks = [
        ("implements bhhub_check_eligibility", lambda: check_implements_eligibility(plugin)),
        ("None for a payer it does not serve", lambda: check_not_my_payer(plugin)),
        ("mapping file loads", lambda: check_mapping_file(plugin) or "no mapping file (not checked)"),
    ]
    if served_request is not None:
        checks.append(("answers for a payer it serves", lambda: check_answers(plugin, served_request)))
    if check_import:
        checks.append(("no network at import", lambda: check_no_network_at_import(module_name_of(plugin))))
    if entry_point:
        checks.append(("entry point", lambda: check_entry_point(entry_point, plugin)))
    return run_all(checks)


class PayerPortalPluginContract:
    """The contract as pytest tests; set ``plugin`` and ``entry_point``. Override
    ``served_request()`` (returning ``sample_request(...)`` for a payer you serve, with the portal
    answering offline) to check the answer's shape too."""

    plugin: ClassVar[object] = None
    entry_point: ClassVar[str | None] = None
    service_types: ClassVar[Sequence[str]] = ("MH",)

    def _plugin(self) -> object:
        if self.plugin is None:
            raise ContractFailure(f"{type(self).__name__} must set `plugin` to the plugin module or object")
        return self.plugin

    def served_request(self) -> dict[str, Any] | None:
        return None

    def test_implements_eligibility(self):
        check_implements_eligibility(self._plugin())

    def test_answers_none_for_a_payer_it_does_not_serve(self):
        check_not_my_payer(self._plugin())

    def test_answers_for_a_payer_it_serves(self):
        request = self.served_request()
        if request is None:
            import pytest

            pytest.skip("override served_request() to check an answer")
        check_answers(self._plugin(), request)

    def test_no_network_at_import(self):
        check_no_network_at_import(module_name_of(self._plugin()))

    def test_mapping_file_loads_and_validates(self):
        if check_mapping_file(self._plugin()) is None:
            import pytest

            pytest.skip("the plugin declares no MAPPING_FILE: nothing was checked")

    def test_entry_point_loads_this_plugin(self):
        if not self.entry_point:
            import pytest

            pytest.skip("set entry_point to the name under [project.entry-points.bhhub] to check it")
        check_entry_point(self.entry_point, self._plugin())
