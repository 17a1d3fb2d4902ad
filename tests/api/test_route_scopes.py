"""Every route declares who may call it: a new route without an entry in scopes.RULES fails here, so
it cannot ship reachable by whatever token happens to be valid."""

from __future__ import annotations

from mission_control.web.api.scopes import RULES, SCOPES


def test_every_route_in_the_app_declares_its_scope(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    undeclared = sorted(endpoints - RULES.keys())
    assert undeclared == [], f"add these endpoints to mission_control.web.api.scopes.RULES: {undeclared}"


def test_no_rule_names_a_route_that_does_not_exist_or_a_scope_that_is_not_one(app):
    # demo.echo is routed only with MC_DEMO_ECHO=1
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} | {"demo.echo"}
    assert sorted(RULES.keys() - endpoints) == []
    assert {scope for rule in RULES.values() for scope in rule.grants} <= set(SCOPES)
