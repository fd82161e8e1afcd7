"""Reliability tests: kill and stop the real ``jobqueue serve`` process."""
