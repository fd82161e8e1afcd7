"""Helpers shared by the acceptance and reliability suites: a real ``jobqueue`` process."""
