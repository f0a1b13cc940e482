"""Microsoft Graph and Entra client: auth, HTTP, retry, errors, models, services. Imports nothing else of meetgate."""
