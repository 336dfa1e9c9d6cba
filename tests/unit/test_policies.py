"""Policy packs: the four built-in packs load and encode the manuals' numbers; bad packs are refused at load with
one line naming the file and the field; an operator's pack on KEFU_POLICY_PATH overrides a built-in one by id."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main as kefu
from models.policy import PolicyPack, duration_seconds
from policies.loader import BUILTIN_DIR, PolicyError, get_pack, load_all, load_pack

ROLES = {"agent", "team_lead", "supervisor", "manager"}
PACKS = {"finance": "000+001", "general": "001", "service_center": "002", "telecom": "003"}


@pytest.fixture(autouse=True)
def _no_operator_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_POLICY_PATH", raising=False)


def raw_pack(pack_id: str = "service_center") -> dict[str, Any]:
    return yaml.safe_load((BUILTIN_DIR / f"{pack_id}.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, raw: dict[str, Any], name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def seconds(pack: PolicyPack, cls: str, clock: str) -> int:
    return duration_seconds(pack.classes[cls].clocks[clock].target)  # type: ignore[index]


# --- the built-in packs ------------------------------------------------------------------------------------------
def test_all_four_packs_load_with_their_ids_and_manuals() -> None:
    packs = load_all()
    assert set(packs) == set(PACKS)
    for pack_id, manual in PACKS.items():
        pack = packs[pack_id]
        assert pack.id == pack_id and pack.version == 1 and pack.manual == manual
        assert pack.calendar.timezone == "Asia/Shanghai"
        assert set(pack.request_types) == {"inquiry", "complaint", "suggestion", "repair", "transaction"}


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_every_class_has_the_three_clocks_each_citing_its_source(pack_id: str) -> None:
    pack = get_pack(pack_id)
    for name, cls in pack.classes.items():
        assert {"first_response", "handling", "closure"} <= set(cls.clocks), name
        for clock_name, clock in cls.clocks.items():
            assert clock.source.strip(), f"{pack_id}.{name}.{clock_name} cites no manual section or project default"
        assert cls.retention_years >= 1


@pytest.mark.parametrize("pack_id", sorted(PACKS))
def test_ladder_roles_and_calendar_are_shared(pack_id: str) -> None:
    pack = get_pack(pack_id)
    assert {level.role for level in pack.escalation} <= ROLES
    assert pack.escalation[0].role == "agent"
    reference = get_pack("service_center").calendar
    assert pack.calendar.holidays == reference.holidays and pack.calendar.makeup_days == reference.makeup_days


def test_telecom_encodes_manual_003() -> None:
    pack = get_pack("telecom")
    assert {"urgent", "important", "general"} <= set(pack.classes)
    assert seconds(pack, "urgent", "first_response") == 15 * 60  # 003 §3.1 network outage
    assert seconds(pack, "important", "handling") == 24 * 3600  # 003 §1.1
    assert seconds(pack, "general", "handling") == 48 * 3600  # 003 §1.1
    assert seconds(pack, "major", "first_response") == 4 * 3600  # 003 §2.3 major complaint
    assert pack.revisit.reopen_below == 90  # 003 §3.4
    assert all(cls.retention_years >= 3 for cls in pack.classes.values())  # 003 §1.1, §4.4
    names = {r.name: r for r in pack.classification.rules}
    assert names["network outage"].then.priority == "urgent"  # 003 §3.1
    assert names["plan change"].then.priority == "important"  # 003 §3.1


def test_finance_encodes_manuals_000_and_001() -> None:
    pack = get_pack("finance")
    assert set(pack.classes) == {"urgent", "normal", "routine"}
    for cls in pack.classes:
        assert seconds(pack, cls, "handling") <= 24 * 3600  # 000 §2.2
        assert seconds(pack, cls, "first_response") == 5 * 60  # 001 §5.1–5.2
    assert pack.extensions.requires_customer_notice  # 000 §2.2
    funds = next(r for r in pack.classification.rules if r.when.funds_at_risk)
    assert funds.then.priority == "urgent" and funds.then.joint_handling == "business"  # 000 §2.2
    op_error = next(r for r in pack.classification.rules if r.then.category == "operational_error")
    assert op_error.then.department == "business" and op_error.then.requires_check  # 001 §4.2
    categories = {c for cats in pack.categories.values() for c in cats}
    assert {"account_anomaly", "failed_transfer", "frozen_account", "service_attitude", "operational_error",
            "incorrect_information", "funds_safety", "account_security"} <= categories


def test_general_encodes_manual_001() -> None:
    pack = get_pack("general")
    assert set(pack.classes) == {"urgent", "normal", "routine"}  # 001 §4.1
    assert pack.classification.type_priority["inquiry"] == "routine"
    assert pack.classification.type_priority["suggestion"] == "routine"
    assert all(seconds(pack, cls, "first_response") == 5 * 60 for cls in pack.classes)  # 001 §5.1–5.2


def test_kefu_policy_check_accepts_a_builtin_pack(capsys: pytest.CaptureFixture[str]) -> None:
    assert kefu(["policy", "check", str(BUILTIN_DIR / "telecom.yaml")]) == 0
    assert "ok (telecom v1)" in capsys.readouterr().out


# --- bad packs are refused at load ---------------------------------------------------------------------------------
def _unknown_field(raw: dict[str, Any]) -> None:
    raw["classes"]["normal"]["colour"] = "blue"


def _negative_target(raw: dict[str, Any]) -> None:
    raw["classes"]["normal"]["clocks"]["handling"]["target"] = "-24h"


def _missing_target(raw: dict[str, Any]) -> None:
    del raw["classes"]["urgent"]["clocks"]["closure"]["target"]


def _level_without_role(raw: dict[str, Any]) -> None:
    del raw["escalation"][2]["role"]


def _overlapping_hours(raw: dict[str, Any]) -> None:
    raw["calendar"]["working_hours"] = [{"start": "09:00", "end": "12:30"}, {"start": "12:00", "end": "18:00"}]


def _unknown_zone(raw: dict[str, Any]) -> None:
    raw["calendar"]["timezone"] = "Asia/Beijing"


def _unknown_class(raw: dict[str, Any]) -> None:
    raw["classification"]["rules"][0]["then"]["priority"] = "platinum"


def _missing_clock(raw: dict[str, Any]) -> None:
    del raw["classes"]["complex"]["clocks"]["closure"]


@pytest.mark.parametrize(("breakage", "field", "problem"), [
    (_unknown_field, "classes.normal.colour", "extra inputs are not permitted"),
    (_negative_target, "classes.normal.clocks.handling.target", "bad duration '-24h'"),
    (_missing_target, "classes.urgent.clocks.closure.target", "field required"),
    (_level_without_role, "escalation.2.role", "field required"),
    (_overlapping_hours, "calendar", "overlap"),
    (_unknown_zone, "calendar.timezone", "unknown time zone 'Asia/Beijing'"),
    (_unknown_class, "(top level)", "priority 'platinum' is not one of the classes"),
    (_missing_clock, "(top level)", "class 'complex' lacks clocks ['closure']"),
], ids=["unknown-field", "negative-target", "missing-target", "level-without-role", "overlapping-hours",
        "unknown-zone", "unknown-class", "missing-clock"])
def test_bad_pack_is_refused_with_one_line_naming_file_and_field(
        tmp_path: Path, breakage: Any, field: str, problem: str) -> None:
    raw = copy.deepcopy(raw_pack())
    breakage(raw)
    path = write(tmp_path, raw)
    with pytest.raises(PolicyError) as refused:
        load_pack(path)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: ")
    assert problem.lower() in message.lower()


def test_zero_target_is_refused(tmp_path: Path) -> None:
    raw = raw_pack()
    raw["classes"]["normal"]["clocks"]["first_response"]["target"] = "0m"
    with pytest.raises(PolicyError, match=r"classes\.normal\.clocks\.first_response\.target: .*must be positive"):
        load_pack(write(tmp_path, raw))


def test_not_a_mapping_and_broken_yaml_are_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="mapping at the top level"):
        load_pack(listed)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="not valid YAML") as refused:
        load_pack(broken)
    assert "\n" not in str(refused.value)


def test_kefu_policy_check_refuses_a_bad_pack_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = raw_pack("telecom")
    raw["calendar"]["timezone"] = "Mars/Olympus"
    path = write(tmp_path, raw)
    assert kefu(["policy", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "calendar.timezone" in err


# --- operator packs: KEFU_POLICY_PATH --------------------------------------------------------------------------------
def test_operator_pack_overrides_builtin_by_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = raw_pack("telecom")
    raw["version"] = 2
    raw["title"] = "运营商自定义 (operator's telecom)"
    raw["classes"]["urgent"]["clocks"]["first_response"]["target"] = "10m"
    write(tmp_path, raw, "my_telecom.yaml")
    extra = raw_pack("general")
    extra["id"] = "acme"
    write(tmp_path, extra, "acme.yaml")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))

    packs = load_all()
    assert set(packs) == {*PACKS, "acme"}
    telecom = get_pack("telecom")
    assert telecom.version == 2 and telecom.key == "telecom@v2"
    assert seconds(telecom, "urgent", "first_response") == 600
    assert get_pack("finance").version == 1  # the others stay built-in


def test_invalid_operator_pack_fails_the_load_naming_its_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = raw_pack("finance")
    raw["escalation"].append({"level": 4, "title": "董事会 board"})
    path = write(tmp_path, raw, "finance.yaml")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    with pytest.raises(PolicyError) as refused:
        load_all()
    assert str(refused.value).startswith(f"{path}: escalation.4.role: ")


def test_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(PolicyError, match=r"unknown policy 'bank'.*finance, general, service_center, telecom"):
        get_pack("bank")


def test_worker_refuses_to_start_with_an_invalid_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 4: a bad pack stops the worker at start, rather than failing requests later."""
    from archive.store import Archive
    from worker import build_worker

    (tmp_path / "broken.yaml").write_text("id: broken\nversion: 1\ntitle: x\n", encoding="utf-8")
    monkeypatch.setenv("KEFU_POLICY_PATH", str(tmp_path))
    with pytest.raises(PolicyError, match=r"broken\.yaml: manual"):
        build_worker(None, Archive(f"sqlite:///{tmp_path / 'a.db'}"))  # type: ignore[arg-type]


def test_channel_overrides_replace_a_class_clock_for_that_channel() -> None:
    """001 Ch3: each channel tier has its own response limits."""
    general = get_pack("general")
    assert duration_seconds(general.clocks_for("normal", "chat")["first_response"].target) == 60
    assert duration_seconds(general.clocks_for("normal", "branch")["first_response"].target) == 15 * 60
    phone = general.clocks_for("normal", "phone")
    assert phone == dict(general.classes["normal"].clocks)  # no override: the class's own clocks


def test_channel_override_for_an_unknown_channel_or_class_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((BUILTIN_DIR / "general.yaml").read_text(encoding="utf-8"))
    raw["channel_overrides"] = {"chat": {"clocks": {"first_response": {"target": "1m"}}, "classes": ["gold"]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"bad\.yaml: .*channel_overrides\.chat\.classes: 'gold'"):
        load_pack(tmp_path / "bad.yaml")
