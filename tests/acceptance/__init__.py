"""Acceptance tests: the real ``jobqueue serve`` process driven over HTTP."""
