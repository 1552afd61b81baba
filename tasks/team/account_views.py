"""The product's own login and password-change pages (before django.contrib.auth's in aisa_site/urls.py):
the product's layout, a clear message for a locked-out or expired login (tasks/accounts.py)."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from tasks.team import people
from tasks.team.accounts import SESSION_CHANGE_BY, LoginForm, OwnPasswordChangeForm


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Set one's own password: after logging in with a one-time password, or whenever one likes."""
    required = SESSION_CHANGE_BY in request.session
    form = OwnPasswordChangeForm(request.user, request.POST or None, one_time=required)
    if request.method == "POST" and form.is_valid():
        people.person_change_own_password(person=request.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, request.user)  # stay logged in with the new password
        request.session.pop(SESSION_CHANGE_BY, None)
        messages.success(request, "Your password is changed.")
        return redirect("password_change_done")
    context = {"form": form, "required": required}
    return render(request, "registration/password_change_form.html", context)


@never_cache
def password_change_done(request):
    return render(request, "registration/password_change_done.html")


urlpatterns = [
    path("accounts/login/", LoginView.as_view(authentication_form=LoginForm), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", password_change, name="password_change"),
    path("accounts/password_change/done/", password_change_done, name="password_change_done"),
]
