"""Monitoring: drift and live performance of the served champion, and the sensor that retrains on drift."""
