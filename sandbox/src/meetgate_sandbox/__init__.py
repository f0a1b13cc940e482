"""A local emulator of Entra, Microsoft Graph and the Teams policy engine, served over HTTPS."""
