"""Graph change notifications received by the gateway, turned into consumer webhook events.

- :mod:`.crypto`: the encryption certificate, decrypting rich notifications (HMAC checked first),
  validating the ``validationTokens`` JWTs;
- :mod:`.subscriptions`: the subscription manager (ensure, renew, lifecycle events);
- :mod:`.processor`: a stored notification to ``publish_event`` for the meeting's consumer;
- :mod:`.poller`: the same events read after each meeting's end where Graph cannot reach the gateway.
"""
