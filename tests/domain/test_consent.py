"""The pure consent rules (node/domain/governance/consent.py), one rule per test; the
Hypothesis properties are in tests/governance/test_consent_properties.py."""

from __future__ import annotations

import random
from typing import Any

from governance.gov_book import ALICE, BOB, CAROL, MEMBERS, OUTSIDER, Book

from node.domain.governance.consent import (
    Governance,
    Signed,
    latest_positions,
    objection_subject,
)
from node.domain.governance.records import DecisionRec, version_hash

# ---- versions ----------------------------------------------------------------------------------


def test_version_hash_binds_proposal_and_exact_text() -> None:
    """The version hash changes with the proposal id and with any change of text."""
    a, b = bytes(16), bytes([1]) * 16
    assert version_hash(a, "x") != version_hash(b, "x")
    assert version_hash(a, "x") != version_hash(a, "x ")
    assert version_hash(a, "x") == version_hash(a, "x")


def test_amendments_form_a_tree_and_the_deepest_is_current() -> None:
    """Each amendment's number is its depth from the first version; the deepest is current."""
    book = Book()
    pid, v0 = book.propose()
    v1 = book.amend(pid, v0, "v1")
    v2 = book.amend(pid, v1, "v2")
    side = book.amend(pid, v0, "side")
    proposal = Governance(book.records).proposals[pid]
    assert {h: v.number for h, v in proposal.versions.items()} == {v0: 0, v1: 1, v2: 2, side: 1}
    assert proposal.current().hash == v2
    assert proposal.versions[v2].base == v1


def test_concurrent_amendments_tie_on_the_lower_op_id() -> None:
    """Two amendments of the same base: the one with the lower op id is current."""
    book = Book()
    pid, v0 = book.propose()
    x = book.amend(pid, v0, "x")
    y = book.amend(pid, v0, "y")
    proposal = Governance(book.records).proposals[pid]
    lower = min(proposal.versions[x], proposal.versions[y], key=lambda v: v.op_id)
    assert proposal.current().hash == lower.hash


def test_an_amendment_repeating_a_known_text_makes_no_new_version() -> None:
    """Amending back to the first text does not bring old positions back into play."""
    book = Book()
    pid, v0 = book.propose()
    v1 = book.amend(pid, v0, "v1")
    book.amend(pid, v1, "v0")
    proposal = Governance(book.records).proposals[pid]
    assert len(proposal.versions) == 2
    assert proposal.current().hash == v1


def test_an_amendment_of_an_unknown_base_is_ignored() -> None:
    """An amendment whose base version is unknown adds nothing."""
    book = Book()
    pid, _v0 = book.propose()
    book.amend(pid, bytes(32), "orphan")
    assert len(Governance(book.records).proposals[pid].versions) == 1


def test_version_numbers_do_not_depend_on_record_order() -> None:
    """Folding the same amendments in any order gives the same numbered tree."""
    book = Book()
    pid, v0 = book.propose()
    v1 = book.amend(pid, v0, "v1")
    book.amend(pid, v1, "v2")
    book.amend(pid, v0, "v2")  # the same text, shallower: it is version 1
    expected = {h: v.number for h, v in Governance(book.records).proposals[pid].versions.items()}
    for seed in range(5):
        shuffled = list(book.records)
        random.Random(seed).shuffle(shuffled)
        got = Governance(shuffled).proposals[pid].versions
        assert {h: v.number for h, v in got.items()} == expected
    assert expected[version_hash(pid, "v2")] == 1


# ---- positions -----------------------------------------------------------------------------------


def test_latest_position_per_key_is_the_highest_seq() -> None:
    """A member's later position (higher seq) on the same version replaces the earlier one."""
    book = Book()
    pid, v0 = book.propose()
    book.pos(BOB, pid, v0, "objection")
    later = book.pos(BOB, pid, v0, "consent", ts=0)  # an earlier clock does not matter
    proposal = Governance(book.records).proposals[pid]
    assert latest_positions(proposal.positions, v0)[BOB] == later


def test_latest_position_across_devices_is_the_later_time() -> None:
    """Across a member's keys the later record time wins, then the lower op id."""
    book = Book()
    pid, v0 = book.propose()
    phone, laptop = bytes([7]) * 32, bytes([8]) * 32
    book.pos(BOB, pid, v0, "objection", author=phone, ts=10)
    latest = book.pos(BOB, pid, v0, "consent", author=laptop, ts=20)
    proposal = Governance(book.records).proposals[pid]
    assert latest_positions(proposal.positions, v0)[BOB] == latest
    tie_a = book.pos(CAROL, pid, v0, "consent", author=phone, ts=30)
    tie_b = book.pos(CAROL, pid, v0, "concern", author=laptop, ts=30)
    proposal = Governance(book.records).proposals[pid]
    assert latest_positions(proposal.positions, v0)[CAROL] == min(
        tie_a, tie_b, key=lambda s: s.op_id
    )


def test_concerns_never_block() -> None:
    """Consent from two members and a concern from the third leave nothing missing."""
    book = Book()
    pid, v0 = book.propose()
    book.pos(ALICE, pid, v0, "consent")
    book.pos(BOB, pid, v0, "consent")
    concern = book.pos(CAROL, pid, v0, "concern")
    outcome = book.outcome(pid)
    assert (outcome.missing, outcome.open_objections) == ([], [])
    assert outcome.concerns == [concern]
    assert outcome.state == "consent_round"  # agreed only once a decision record holds


def test_an_objection_blocks_and_the_proposal_is_integrating() -> None:
    """An open objection is listed, its author counts as missing, the state is integrating."""
    book = Book()
    pid, v0 = book.propose()
    book.pos(ALICE, pid, v0, "consent")
    objection = book.pos(BOB, pid, v0, "objection")
    outcome = book.outcome(pid)
    assert outcome.open_objections == [objection]
    assert outcome.missing == sorted([BOB, CAROL])
    assert outcome.state == "integrating"


def test_positions_on_an_old_version_never_count() -> None:
    """After an amendment, consents and objections on the old version no longer count."""
    book = Book()
    pid, v0 = book.propose()
    book.all_consent(pid, v0)
    book.pos(BOB, pid, v0, "objection")
    v1 = book.amend(pid, v0, "v1")
    outcome = book.outcome(pid)
    assert outcome.version.hash == v1
    assert (outcome.positions, outcome.open_objections) == ({}, [])
    assert outcome.missing == sorted(MEMBERS)
    book.stage(pid, "consent_round")
    assert book.outcome(pid).state == "consent_round"


def test_a_position_by_a_member_outside_the_quorum_never_counts() -> None:
    """An outsider's objection neither blocks nor appears as a counted position."""
    book = Book()
    pid, v0 = book.propose()
    book.all_consent(pid, v0)
    outsider = book.pos(OUTSIDER, pid, v0, "objection")
    outcome = book.outcome(pid)
    assert (outcome.missing, outcome.open_objections) == ([], [])
    assert OUTSIDER not in outcome.positions
    assert outcome.ignored == [outsider]


# ---- objection tests -----------------------------------------------------------------------------


def test_the_objectors_own_acknowledgement_tests_an_objection_away() -> None:
    """A "does not qualify" test signed by the objector: no longer open, kept as a concern."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    book.test(BOB, objection)
    outcome = book.outcome(pid)
    assert outcome.open_objections == []
    assert objection in outcome.concerns
    assert BOB not in outcome.missing


def test_someone_elses_test_without_a_decision_does_not_count() -> None:
    """Alice cannot declare Bob's objection invalid on her own."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    book.test(ALICE, objection)
    assert book.outcome(pid).open_objections == [objection]


def test_a_test_saying_it_qualifies_keeps_the_objection_open() -> None:
    """``qualifies=True`` (even by the objector) never takes an objection away."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    book.test(BOB, objection, qualifies=True)
    assert book.outcome(pid).open_objections == [objection]


def _tested_by_consent(name_it: bool) -> tuple[Book, bytes, Signed]:
    """Bob objects; the circle agrees a proposal testing it; Alice records the test."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    subject = objection_subject(objection.op_id) if name_it else ""
    test_pid, t0 = book.propose(text="it does not qualify", subject=subject)
    book.decide(test_pid, t0, book.all_consent(test_pid, t0))
    book.test(ALICE, objection, decision=test_pid)
    return book, pid, objection


def test_a_test_citing_an_agreed_proposal_on_that_objection_counts() -> None:
    """A test citing an agreed proposal whose subject is this objection takes it away."""
    book, pid, _objection = _tested_by_consent(name_it=True)
    assert book.outcome(pid).open_objections == []
    book, pid, objection = _tested_by_consent(name_it=False)
    assert book.outcome(pid).open_objections == [objection]


def test_a_test_citing_an_agreed_proposal_counts_only_with_the_right_subject() -> None:
    """The cited proposal must be agreed and name exactly this objection as its subject."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    other = book.pos(CAROL, pid, v0, "objection")
    right, r0 = book.propose(
        text="bob's does not qualify", subject=objection_subject(objection.op_id)
    )
    wrong, w0 = book.propose(text="carol's", subject=objection_subject(bytes(32)))
    book.decide(right, r0, book.all_consent(right, r0))
    book.decide(wrong, w0, book.all_consent(wrong, w0))
    book.test(ALICE, objection, decision=right)
    book.test(ALICE, other, decision=wrong)
    assert book.outcome(pid).open_objections == [other]


def test_a_test_citing_a_proposal_not_agreed_does_not_count() -> None:
    """A test cites a proposal about the objection that is still open: the objection stays."""
    book = Book()
    pid, v0 = book.propose()
    objection = book.pos(BOB, pid, v0, "objection")
    test_pid, _t0 = book.propose(text="test", subject=objection_subject(objection.op_id))
    book.test(ALICE, objection, decision=test_pid)
    assert book.outcome(pid).open_objections == [objection]


# ---- decisions -----------------------------------------------------------------------------------


def test_a_decision_listing_every_required_consent_holds() -> None:
    """All required consents on the version: the decision holds and the proposal is agreed."""
    book = Book()
    pid, v0 = book.propose()
    decision = book.decide(pid, v0, book.all_consent(pid, v0))
    gov = Governance(book.records)
    assert gov.decision_holds(decision, lambda _op: set(MEMBERS)) is None
    outcome = book.outcome(pid)
    assert (outcome.state, outcome.decision) == ("agreed", decision)
    assert set(outcome.positions) == MEMBERS


def _why(book: Book, decision: Signed, required: set[bytes] = MEMBERS) -> str | None:
    return Governance(book.records).decision_holds(decision, lambda _op: set(required))


def test_a_decision_missing_a_required_member_does_not_hold() -> None:
    """Two of three consents listed: the decision does not hold and names who is missing."""
    book = Book()
    pid, v0 = book.propose()
    consents = book.all_consent(pid, v0)
    decision = book.decide(pid, v0, consents[:2])
    assert "did not consent" in (_why(book, decision) or "")
    assert book.outcome(pid).state == "consent_round"


def test_a_decision_listing_an_open_objection_does_not_hold() -> None:
    """An objection that was not tested away cannot be part of a decision."""
    book = Book()
    pid, v0 = book.propose()
    listed = [book.pos(ALICE, pid, v0, "consent"), book.pos(CAROL, pid, v0, "consent")]
    listed.append(book.pos(BOB, pid, v0, "objection"))
    decision = book.decide(pid, v0, listed)
    assert "not tested away" in (_why(book, decision) or "")
    book.test(BOB, listed[-1])
    assert _why(book, decision) is None


def test_a_decision_listing_a_position_on_another_version_does_not_hold() -> None:
    """Consents on version 0 do not make a decision on version 1."""
    book = Book()
    pid, v0 = book.propose()
    consents = book.all_consent(pid, v0)
    v1 = book.amend(pid, v0, "v1")
    decision = book.decide(pid, v1, consents)
    assert "another proposal or version" in (_why(book, decision) or "")


def test_a_decision_listing_an_unknown_op_does_not_hold() -> None:
    """An op id that is no position record here makes the decision fail."""
    book = Book()
    pid, v0 = book.propose()
    consents = book.all_consent(pid, v0)
    record = DecisionRec(
        proposal=pid, version=v0, positions=[c.op_id for c in consents] + [bytes(32)]
    )
    decision = book.add(ALICE, record)
    assert "not a known position record" in (_why(book, decision) or "")


def test_a_decision_listing_a_member_twice_does_not_hold() -> None:
    """Two positions of one member in one decision are refused (which one would count?)."""
    book = Book()
    pid, v0 = book.propose()
    consents = book.all_consent(pid, v0)
    again = book.pos(BOB, pid, v0, "consent")
    decision = book.decide(pid, v0, [*consents, again])
    assert "two positions" in (_why(book, decision) or "")


def test_a_decision_for_an_unknown_proposal_is_kept_and_does_not_hold() -> None:
    """A decision naming a proposal this circle lacks is kept for verify, and fails."""
    book = Book()
    decision = book.add(ALICE, DecisionRec(proposal=bytes(16), version=bytes(32), positions=[]))
    gov = Governance(book.records)
    assert gov.decisions == [decision]
    assert "does not have" in (_why(book, decision) or "")


def test_the_quorum_of_a_decision_is_judged_over_what_it_rests_on() -> None:
    """``required_for`` sees the union of the records a decision rests on (stale deps)."""
    book = Book()
    pid, v0 = book.propose()
    alone = book.pos(ALICE, pid, v0, "consent")
    decision = book.decide(pid, v0, [alone])
    gov = Governance(book.records)
    seen: list[list[bytes]] = []

    def required_for(ops: Any) -> set[bytes]:
        seen.append(list(ops))
        return set(MEMBERS)  # e.g. the proposal's deps show Bob and Carol as members

    why = gov.decision_holds(decision, lambda _op: {ALICE}, required_for=required_for)
    assert why is not None
    assert "2 required member(s)" in why
    proposal = gov.proposals[pid]
    rests_on = {decision.op_id, proposal.op_id, proposal.versions[v0].op_id, alone.op_id}
    assert set(seen[0]) == rests_on
    assert gov.decision_holds(decision, lambda _op: {ALICE}) is None  # judged by itself alone


def test_a_decision_closes_the_round() -> None:
    """A position changed after the decision does not undo the agreement."""
    book = Book()
    pid, v0 = book.propose()
    decision = book.decide(pid, v0, book.all_consent(pid, v0))
    book.pos(BOB, pid, v0, "objection")
    outcome = book.outcome(pid)
    assert (outcome.state, outcome.decision, outcome.open_objections) == ("agreed", decision, [])


def test_a_decision_on_an_older_version_still_agrees_the_proposal() -> None:
    """An amendment concurrent with a decision does not unmake the agreement on its version."""
    book = Book()
    pid, v0 = book.propose()
    book.decide(pid, v0, book.all_consent(pid, v0))
    book.amend(pid, v0, "late amendment")
    outcome = book.outcome(pid)
    assert (outcome.state, outcome.version.hash) == ("agreed", v0)


# ---- states ----------------------------------------------------------------------------------


def test_stages_move_a_proposal_through_the_s3_states() -> None:
    """draft -> clarifying -> reactions -> consent_round, by the latest stage record."""
    book = Book()
    pid, _v0 = book.propose()
    assert book.outcome(pid).state == "draft"
    for stage in ("clarifying", "reactions", "consent_round"):
        book.stage(pid, stage)
        assert book.outcome(pid).state == stage


def test_positions_open_the_consent_round_without_earlier_stages() -> None:
    """For asynchronous use a first position puts a draft straight into the consent round."""
    book = Book()
    pid, v0 = book.propose()
    book.pos(ALICE, pid, v0, "consent")
    assert book.outcome(pid).state == "consent_round"


def test_deferred_resumes_and_withdrawn_is_final() -> None:
    """A later stage resumes a deferred proposal; withdrawn wins over any later stage."""
    book = Book()
    pid, _v0 = book.propose()
    book.stage(pid, "deferred")
    assert book.outcome(pid).state == "deferred"
    book.stage(pid, "consent_round")
    assert book.outcome(pid).state == "consent_round"
    book.stage(pid, "withdrawn")
    book.stage(pid, "clarifying")
    assert book.outcome(pid).state == "withdrawn"


def test_agreed_wins_over_withdrawn() -> None:
    """A withdraw concurrent with a decision that holds cannot unmake the agreement."""
    book = Book()
    pid, v0 = book.propose()
    book.decide(pid, v0, book.all_consent(pid, v0))
    book.stage(pid, "withdrawn")
    assert book.outcome(pid).state == "agreed"
