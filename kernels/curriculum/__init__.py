"""Curriculum learning: difficulty scores, pacing functions and paced batch sampling."""
