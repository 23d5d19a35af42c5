"""E-mail: templates and rendering (render.py) and the local sink ``make run`` starts (sink.py).
Sending is the ``send_email`` activity (activities/mail.py); the model is domain/mail.py."""
