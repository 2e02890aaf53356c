"""`madoguchi staff`: add, disable and list the staff accounts that may sign in to the /admin pages."""


import click

from bot.cli.support import prepared_core
from core.clock import TOKYO


@click.group()
def staff() -> None:
    """Staff accounts for the /admin pages."""


@staff.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "agent"]), default="admin", show_default=True,
              help="admin: the dashboard and the agents' inbox; agent: the agents' inbox only.")
@click.option("--name", "display_name", default=None,
              help="The name students and transcripts show for this person (never the email); agents need one.")
def staff_add(email: str, role: str, display_name: str | None) -> None:
    """Create a staff account; the password is asked twice, hidden (never give it as an argument)."""
    from core import staff as accounts

    if role == accounts.Role.AGENT.value and display_name is None:
        display_name = click.prompt("Display name shown to students (not the email)", prompt_suffix=": ")
    password = click.prompt("Password (at least 12 characters)", hide_input=True, confirmation_prompt=True,
                            prompt_suffix=": ")
    problems = accounts.check_password(password)
    if problems:
        raise click.ClickException("password " + "; ".join(problems) + ". No account was created.")
    core = prepared_core()
    try:
        with core.transaction() as session:
            account = accounts.create_account(session, email, password, core.now(), role=accounts.Role(role),
                                              display_name=display_name)
            created = account.email
    except accounts.StaffError as error:
        raise click.ClickException(f"{error}. No account was created.") from error
    click.echo(f"staff account {created} ({role}) created: sign in at {core.url('/admin/login')}")


@staff.command("disable")
@click.argument("email")
def staff_disable(email: str) -> None:
    """Disable a staff account: it can no longer sign in, and its open sessions end now."""
    from core import staff as accounts

    core = prepared_core()
    try:
        with core.transaction() as session:
            account = accounts.disable_account(session, email, core.now())
            disabled = account.email
    except accounts.StaffError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"staff account {disabled} disabled")


@staff.command("list")
def staff_list() -> None:
    """List the staff accounts with their last sign-in (Japan time) and whether they are active."""
    from core import staff as accounts

    core = prepared_core()
    with core.transaction() as session:
        rows = [(a.email, a.role, a.display_name or "-", a.created_at, a.last_login_at, a.disabled_at)
                for a in accounts.list_accounts(session)]
    if not rows:
        click.echo("no staff accounts yet: add one with `madoguchi staff add EMAIL`")
        return
    width = max(len("email"), *(len(email) for email, *_ in rows))
    names = max(len("name"), *(len(name) for _, _, name, *_ in rows))
    click.echo(f"{'email':<{width}}  {'role':<5}  {'name':<{names}}  {'created (JST)':<16}  {'last sign-in (JST)':<18}"
               "  status")
    for email, role, name, created, last, disabled in rows:
        status = f"disabled {disabled.astimezone(TOKYO):%Y-%m-%d}" if disabled else "active"
        last_text = f"{last.astimezone(TOKYO):%Y-%m-%d %H:%M}" if last else "never"
        click.echo(f"{email:<{width}}  {role:<5}  {name:<{names}}  {created.astimezone(TOKYO):%Y-%m-%d %H:%M}  "
                   f"{last_text:<18}  {status}")
