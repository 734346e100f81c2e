"""Running a sweep: preflight checks, the controller, worker loops, the local worker pool and progress."""
