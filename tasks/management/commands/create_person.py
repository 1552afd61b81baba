"""Create a person with a role and a one-time password, as the People page does (audited, no actor)."""

from django.core.management.base import BaseCommand, CommandError

from tasks.roles import ADMINS, MEMBERS
from tasks.team import people
from tasks.team.forms import PersonForm


class Command(BaseCommand):
    help = "Create a Member or an Admin; prints a one-time password once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--role", choices=["member", "admin"], default="member")

    def handle(self, *args, username: str, email: str, role: str, **options):
        # The People page's rules: a name of letters, digits and @.+-_ of at most 150, a readable address.
        form = PersonForm(
            {"username": username, "email": email, "role": ADMINS if role == "admin" else MEMBERS}
        )
        if not form.is_valid():
            raise CommandError(
                " ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            )
        try:
            user, password = people.person_create(actor=None, **form.cleaned_data)
        except people.PersonError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created {role} {user.username}. One-time password (shown once): {password}")
        )
