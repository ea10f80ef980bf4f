"""Jinja2 templates shipped with the package: ``approve/`` holds the approver page."""
