"""Graph change notifications received by the gateway, turned into consumer webhook events.

- :mod:`.crypto`: the encryption certificate, decrypting rich notifications (HMAC checked first),
  validating the ``validationTokens`` JWTs;
- :mod:`.subscriptions`: the subscription manager (ensure, renew, reauthorize, recreate; the
  tenant-wide transcripts and recordings, a meeting's call events);
- :mod:`.processor`: a stored notification to ``publish_event`` for the meeting's consumer;
- :mod:`.reader`: a meeting's artifacts read from Graph (``missed`` catch-up, the poller);
- :mod:`.poller`: the same events read after each meeting's end where Graph cannot reach the gateway;
- :mod:`.service`: all of it on ``app.state.notifications``, with its background rounds.
"""
