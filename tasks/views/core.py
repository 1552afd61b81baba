from django.shortcuts import render
from django.urls import path

from tasks import selectors


def home(request):
    """Active tasks, the newest tasks, this month's spend and the ways to start a new one.

    Someone signed in without a role yet sees where to ask for one instead of a 403: this is where
    every login lands.
    """
    if not request.user.has_perm("tasks.view_task"):
        return render(request, "tasks/home.html", {"summary": None})
    return render(request, "tasks/home.html", {"summary": selectors.home_summary(user=request.user)})


urlpatterns = [
    path("", home, name="home"),
]
