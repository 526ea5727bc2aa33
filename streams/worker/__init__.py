"""The Faust worker: wiring (app.py), agents, deliveries, HTTP, metrics, and every Faust patch."""
