"""Imaging core shared by every model: pixel formats, colour spaces, the filter bank, and the
full-resolution application of what a network predicted at low resolution. Touches no transport."""
