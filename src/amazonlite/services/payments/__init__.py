"""Payments (issue 9, in progress): so far only its provider layer (`providers/`: the sandbox and Razorpay
behind one interface). The service around it (payments, webhooks, the saga's consumers) is not built yet,
and it is not part of the platform's topology."""
