"""The web part: the JSON API (:mod:`mission_control.web.api`) and the dashboard, served by gunicorn."""
