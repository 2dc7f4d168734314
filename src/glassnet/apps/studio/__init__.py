"""glassnet studio: a local web page on your own model.

Draw or drop an image and see every number of one forward and backward pass, take an
SGD step, train live, and walk through seed 000's worked example. The server
(Starlette + uvicorn, extra ``glassnet[studio]``) computes nothing of its own: every
number comes from ``gn.trace``, ``predict`` or ``fit`` (see ``views.py``); the page
(``static/``) is plain HTML/CSS/JS, one file per view, no build step.

    glassnet studio [MODEL] [--host 127.0.0.1] [--port 8000] [--no-browser]
"""
