"""`{% breakdown_table breakdown %}`: the spend page's tables, built in Python (tasks/spend/tables.py)."""

from django import template

from tasks.spend.tables import breakdown_table

register = template.Library()
register.simple_tag(breakdown_table, name="breakdown_table")
