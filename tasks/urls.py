"""URLs of the product. Each area's view module owns its own urlpatterns list."""

from tasks.submission import views as submission
from tasks.views import builder, callbacks, core, history, spend

urlpatterns = [
    *core.urlpatterns,
    *callbacks.urlpatterns,
    *builder.urlpatterns,
    *history.urlpatterns,
    *spend.urlpatterns,
    *submission.urlpatterns,
]
