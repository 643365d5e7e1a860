"""Stand-ins for GPU management libraries, so monitoring code runs and is checked on a CPU."""
