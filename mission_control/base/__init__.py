"""The ground every part stands on: the clock (injectable, so tests never sleep) and the settings,
read from the environment in one place. Imports nothing else of Mission Control.
"""
