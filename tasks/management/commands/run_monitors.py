import contextlib
import signal

from django.core.management.base import BaseCommand
from django.template.defaultfilters import pluralize

from tasks.monitors.jobs import monitors_tick
from tasks.monitors.scheduler import scheduler_loop, scheduler_tick


class Command(BaseCommand):
    help = (
        "Run the monitors that are due (docs/monitors.md): once, in a loop beside the worker (--loop), or as "
        "a job the worker runs every minute (--enqueue). Any number may run at once: each slot runs once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Tick until stopped (SIGTERM or Ctrl-C).")
        parser.add_argument("--interval", type=float, default=30.0, help="Seconds between ticks with --loop.")
        parser.add_argument(
            "--enqueue", action="store_true", help="Leave it to the worker: a job every minute."
        )

    def handle(self, *args, loop=False, interval=30.0, enqueue=False, **options):
        if enqueue:
            monitors_tick.enqueue()
            self.stdout.write("The worker will run due monitors now and every minute.")
            return
        if loop:
            stopping = []
            signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
            self.stdout.write(f"Scheduler running: a tick every {interval:g} s.")
            with contextlib.suppress(KeyboardInterrupt):
                scheduler_loop(interval=interval, stop=lambda: bool(stopping))
            return
        report = scheduler_tick()
        self.stdout.write(
            f"{report.claimed} slot{pluralize(report.claimed)} claimed, "
            f"{report.executed} run{pluralize(report.executed)} executed, "
            f"{report.finished} finished, "
            f"{report.alerts_delivered} alert{pluralize(report.alerts_delivered)} delivered."
        )
