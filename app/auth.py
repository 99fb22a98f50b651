"""Sign-in and roles. Revenue data is never served to a session that has not signed in.

* **OIDC** (Streamlit's ``st.login``) when an ``[auth]`` section is configured in
  ``.streamlit/secrets.toml``; the user's roles come from the state database (``app_users``,
  managed with ``meterworks.state.set_roles``), else ``METERWORKS_APP_OIDC_DEFAULT_ROLE``
  (unset: an unknown user sees nothing).
* **Password** from ``METERWORKS_APP_PASSWORD`` (compared with ``hmac.compare_digest``, never
  logged, shown or kept in the session); the signed-in person gives a name for the audit log and
  gets the roles in ``METERWORKS_APP_ROLE`` (comma-separated; default ``admin``).

Roles: ``support`` (customers, alerts, pipeline health), ``finance``/``leadership`` (+ revenue:
overview, reconciliation), ``ops`` (+ adjustments and reconciliation), ``admin`` (everything).
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass

import streamlit as st

from meterworks.state import ADJUST_ROLES, REVENUE_ROLES, RoleError, parse_roles

PASSWORD_ENV = "METERWORKS_APP_PASSWORD"
ROLE_ENV = "METERWORKS_APP_ROLE"
OIDC_DEFAULT_ROLE_ENV = "METERWORKS_APP_OIDC_DEFAULT_ROLE"
SESSION_KEY = "mw_user"
MAX_ATTEMPTS = 5
LOCKOUT_SECONDS = 30.0


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    name: str
    roles: frozenset[str]
    method: str  # "password" | "oidc"

    @property
    def can_see_revenue(self) -> bool:
        return bool(self.roles & REVENUE_ROLES)

    @property
    def can_adjust(self) -> bool:
        return bool(self.roles & ADJUST_ROLES)

    @property
    def can_reconcile(self) -> bool:
        return self.can_see_revenue or "ops" in self.roles

    @property
    def actor(self) -> str:
        """Who, for the audit log."""
        return f"{self.user_id} ({self.method})"


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def password_configured() -> bool:
    return bool(os.environ.get(PASSWORD_ENV))


def _oidc_provider() -> str | None:
    """The provider name when ``[auth.<name>]`` sections are used, else None (``[auth]``)."""
    try:
        section = st.secrets["auth"]
        names = [k for k, v in section.items() if hasattr(v, "keys") and "client_id" in v]
    except Exception:
        return None
    return names[0] if names and "client_id" not in section else None


def _password_roles() -> frozenset[str]:
    try:
        return parse_roles(os.environ.get(ROLE_ENV) or "admin")
    except RoleError as exc:
        st.error(f"{ROLE_ENV}: {exc}")
        st.stop()
        raise


def _oidc_user() -> SignedIn | None:
    if not st.user.is_logged_in:
        return None
    email = str(st.user.get("email") or st.user.get("sub") or "").strip().lower()
    name = str(st.user.get("name") or email)
    roles: frozenset[str] = frozenset()
    try:
        from app.data import state_engine
        from meterworks.state import get_user

        found = get_user(state_engine(), email) if email else None
        if found is not None:
            roles = found.roles
    except Exception as exc:  # the state database is down: nobody gets roles
        st.error(f"cannot read users and roles from the state database: {type(exc).__name__}")
    if not roles:
        try:
            roles = parse_roles(os.environ.get(OIDC_DEFAULT_ROLE_ENV, ""))
        except RoleError:
            roles = frozenset()
    return SignedIn(user_id=email, name=name, roles=roles, method="oidc")


def _password_form() -> None:
    state = st.session_state
    failures = state.get("mw_failures", 0)
    locked_until = state.get("mw_locked_until", 0.0)
    with st.form("mw_login", clear_on_submit=True):
        st.subheader("Sign in")
        name = st.text_input("Your name or e-mail (recorded in the audit log)", key="mw_login_name")
        password = st.text_input("Password", type="password", key="mw_login_password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    if time.monotonic() < locked_until:
        st.error(f"Too many failed attempts: wait {LOCKOUT_SECONDS:.0f} seconds.")
        return
    expected = os.environ.get(PASSWORD_ENV, "")
    if expected and hmac.compare_digest(password.encode(), expected.encode()):
        who = (name or "").strip() or "operator"
        state[SESSION_KEY] = {
            "user_id": who.lower(),
            "name": who,
            "roles": sorted(_password_roles()),
            "method": "password",
        }
        state["mw_failures"] = 0
        st.rerun()
    failures += 1
    state["mw_failures"] = failures
    if failures >= MAX_ATTEMPTS:
        state["mw_locked_until"] = time.monotonic() + LOCKOUT_SECONDS
        state["mw_failures"] = 0
    st.error("Wrong password.")


def current_user() -> SignedIn | None:
    stored = st.session_state.get(SESSION_KEY)
    if stored:
        return SignedIn(
            user_id=stored["user_id"],
            name=stored["name"],
            roles=frozenset(stored["roles"]),
            method=stored["method"],
        )
    if oidc_configured():
        return _oidc_user()
    return None


def require_sign_in() -> SignedIn:
    """The signed-in user; otherwise draws the sign-in screen and stops the script."""
    user = current_user()
    if user is not None:
        if not user.roles:
            st.title("Meterworks")
            st.error(
                f"{user.name} is signed in but has no role here: ask an admin to grant one "
                "(support, finance, leadership, ops or admin)."
            )
            if st.button("Sign out"):
                sign_out(user)
            st.stop()
        return user
    st.title("Meterworks")
    oidc, password = oidc_configured(), password_configured()
    if not oidc and not password:
        st.error(
            "Sign-in is not configured, so no data is shown. Set METERWORKS_APP_PASSWORD (and "
            "optionally METERWORKS_APP_ROLE), or configure OIDC in an [auth] section of "
            ".streamlit/secrets.toml."
        )
        st.stop()
    if oidc:
        provider = _oidc_provider()
        if st.button("Sign in with your identity provider", type="primary"):
            if provider:
                st.login(provider)
            else:
                st.login()
    if password:
        _password_form()
    st.stop()
    raise RuntimeError("unreachable")  # pragma: no cover


def sign_out(user: SignedIn) -> None:
    st.session_state.pop(SESSION_KEY, None)
    if user.method == "oidc":
        st.logout()
    else:
        st.rerun()


def page_guard(*, revenue: bool = False, adjust: bool = False, reconcile: bool = False) -> SignedIn:
    """At the top of each page: the signed-in user, or stop (a page is never drawn for a
    session without the role, even when reached by URL)."""
    user = current_user()
    if user is None or not user.roles:
        st.error("Sign in first.")
        st.stop()
        raise RuntimeError("unreachable")  # pragma: no cover
    if (
        (revenue and not user.can_see_revenue)
        or (adjust and not (user.can_adjust or user.can_see_revenue))
        or (reconcile and not user.can_reconcile)
    ):
        st.error("Your role does not give access to this page.")
        st.stop()
    return user


def link(name: str, label: str, icon: str | None = None) -> None:
    """A link to another page when the user may open it (plain text otherwise)."""
    page = st.session_state.get("mw_pages", {}).get(name)
    if page is None:
        st.markdown(label)
    else:
        st.page_link(page, label=label, icon=icon)
