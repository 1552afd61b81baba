from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    from tasks.roles import ADMIN_PERMISSIONS, ADMINS, MEMBER_PERMISSIONS, MEMBERS

    # Permissions are normally created after all migrations; roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ((MEMBERS, MEMBER_PERMISSIONS), (ADMINS, ADMIN_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(content_type__app_label="tasks", codename__in=codenames)
        group.permissions.add(*perms)


def remove_roles(apps, schema_editor):
    from tasks.roles import ADMINS, MEMBERS

    apps.get_model("auth", "Group").objects.filter(name__in=[MEMBERS, ADMINS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
