"""Pure domain model: job states, the job record, the retry rule and the domain errors."""
